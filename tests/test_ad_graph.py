"""trace_graph, graph_table and draw_graph on the lecture's example L(w1, w2) = w2 log w1 + sqrt(w2 log w1)."""

import io

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from matplotlib.figure import Figure

from coursekit import ad
from tests.ad_helpers import assert_close


def L(w1, w2):
    return w2 * np.log(w1) + np.sqrt(w2 * np.log(w1))


def L_jax(w1, w2):
    return w2 * jnp.log(w1) + jnp.sqrt(w2 * jnp.log(w1))


def test_lecture_example_nodes_values_tangents_adjoints():
    w1, w2 = 2.0, 3.0
    g = ad.trace_graph(L, w1, w2)
    assert [n.name for n in g.nodes] == ["w1", "w2", "v1", "v2", "v3", "v4", "v5", "v6"]
    assert [n.op for n in g.nodes] == ["input", "input", "log", "multiply", "log", "multiply", "sqrt", "add"]
    assert g.nodes[3].inputs == (1, 2) and g.nodes[7].inputs == (3, 6)
    assert g.output == 7
    u = w2 * np.log(w1)
    assert_close([n.value for n in g.nodes], [w1, w2, np.log(w1), u, np.log(w1), u, np.sqrt(u), u + np.sqrt(u)])
    # the default tangent is e_1 = (1, 0): every tangent is d v / d w1
    dv1 = 1 / w1
    du = w2 * dv1
    dsqrt = du / (2 * np.sqrt(u))
    assert_close([n.tangent for n in g.nodes], [1, 0, dv1, du, dv1, du, dsqrt, du + dsqrt])
    # the adjoints of the inputs are the gradient; the output's is 1
    assert_close([g.nodes[0].adjoint, g.nodes[1].adjoint], jax.grad(L_jax, (0, 1))(w1, w2))
    assert g.nodes[g.output].adjoint == 1.0
    assert_close(g.nodes[6].adjoint, 1.0)  # sqrt feeds the sum directly
    assert_close(g.nodes[5].adjoint, 1 / (2 * np.sqrt(u)))


def test_tangents_argument_gives_the_directional_derivative():
    t = (0.5, -2.0)
    g = ad.trace_graph(L, 2.0, 3.0, tangents=t)
    expected = jax.jvp(L_jax, (2.0, 3.0), t)[1]
    assert_close(g.nodes[g.output].tangent, expected)
    with pytest.raises(ValueError, match="2 arguments but 1 tangents"):
        ad.trace_graph(L, 2.0, 3.0, tangents=(1.0,))


def test_graph_table_rows():
    rows = ad.graph_table(ad.trace_graph(L, 2.0, 3.0))
    assert len(rows) == 8
    assert rows[0]._fields == ("name", "op", "value", "tangent", "adjoint")
    assert rows[0].op == "input" and rows[3].op == "multiply(w2, v1)" and rows[6].op == "sqrt(v4)"
    assert rows[-1].name == "v6" and rows[-1].adjoint == 1.0


def test_draw_graph_returns_a_figure_and_draws_into_given_axes():
    g = ad.trace_graph(L, 2.0, 3.0)
    fig = ad.draw_graph(g)
    assert isinstance(fig, Figure)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any("v5 = sqrt" in t and "v = 1.442" in t for t in texts)
    assert any("w1 (input)" in t and "\u0304 = 2.02" in t for t in texts)
    fig.savefig(io.BytesIO(), format="png")  # renders: the arrows are clipped to the boxes at draw time
    other = Figure()
    ax = other.add_subplot()
    assert ad.draw_graph(g, ax=ax, show=("value",)) is other
    assert not any("\u0307" in t.get_text() for t in ax.texts)
    with pytest.raises(ValueError, match="show"):
        ad.draw_graph(g, show=("gradient",))


def test_array_graph_and_unused_input():
    g = ad.trace_graph(lambda x, W, unused: np.sum(np.tanh(x @ W)), np.ones(3), np.full((3, 2), 0.1), np.ones(2))
    assert [n.op for n in g.nodes] == ["input", "input", "input", "matmul", "tanh", "sum"]
    assert_close(g.nodes[2].adjoint, np.zeros(2))
    assert g.nodes[0].tangent.shape == (3,) and g.nodes[0].tangent[0] == 1
    ad.draw_graph(g).savefig(io.BytesIO(), format="png")
    with pytest.raises(ValueError, match="does not depend"):
        ad.trace_graph(lambda x: np.ones(2), np.ones(2))
