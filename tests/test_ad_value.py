"""coursekit.ad.Value, micrograd's scalar API on coursekit's reverse mode, against jax.grad."""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from coursekit import ad
from coursekit.ad.reverse import Node


def test_micrograd_readme_example():
    a, b = ad.Value(-4.0), ad.Value(2.0)
    c = a + b
    d = a * b + b**3
    c += c + 1
    c += 1 + c + (-a)
    d += d * 2 + (b + a).relu()
    d += 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g += 10.0 / f
    g.backward()
    assert g.data == pytest.approx(24.70408163265306, rel=1e-14)
    assert a.grad == pytest.approx(138.83381924198252, rel=1e-14)
    assert b.grad == pytest.approx(645.5772594752186, rel=1e-14)


def test_value_is_a_reverse_mode_node_and_uses_the_rule_table():
    x = ad.Value(0.5)
    y = x.sin()
    assert isinstance(y, Node) and isinstance(y, ad.Value)
    assert y.op is np.sin and len(y.parents) == 1 and y.parents[0] is x
    assert np.sin(x).data == y.data  # NumPy's own functions work on Values too


# random scalar expressions, built from one recipe for Value and for jax.numpy
UNARY = [
    ("exp", lambda v: v.exp(), lambda z: jnp.exp(z)),
    ("tanh", lambda v: v.tanh(), jnp.tanh),
    ("sin", lambda v: v.sin(), jnp.sin),
    ("cos", lambda v: v.cos(), jnp.cos),
    ("relu", lambda v: v.relu(), lambda z: jnp.maximum(z, 0.0)),
    ("log", lambda v: (v * v + 1).log(), lambda z: jnp.log(z * z + 1)),
    ("sqrt", lambda v: (v * v + 0.5).sqrt(), lambda z: jnp.sqrt(z * z + 0.5)),
    ("neg", lambda v: -v, lambda z: -z),
    ("square", lambda v: v**2, lambda z: z**2),
]
BINARY = [
    ("add", lambda a, b: a + b),
    ("sub", lambda a, b: a - b),
    ("mul", lambda a, b: a * b),
    ("div", lambda a, b: a / (b * b + 1)),
    ("radd", lambda a, b: 1.5 + a),
    ("rsub", lambda a, b: 2.0 - b),
    ("rmul", lambda a, b: 0.5 * a),
    ("rdiv", lambda a, b: 1.0 / (a * a + 1)),
    ("pow", lambda a, b: (a * a + 1) ** 1.5),
    ("rpow", lambda a, b: 1.3 ** a),
]


def build(recipe, leaves, unary_index, binary_index):
    nodes = list(leaves)
    for kind, i, j, k in recipe:
        if kind == 0:
            nodes.append(unary_index[k](nodes[i]))
        else:
            nodes.append(binary_index[k](nodes[i], nodes[j]))
    return nodes[-1] + nodes[-2] * 0.5


recipe_strategy = st.lists(
    st.tuples(st.integers(0, 1), st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**6)),
    min_size=1, max_size=12,
)


@given(recipe=recipe_strategy, data=st.lists(st.floats(-1.5, 1.5), min_size=3, max_size=3))
def test_random_expressions_match_jax_grad(recipe, data):
    steps = []
    for t, (kind, i, j, k) in enumerate(recipe):
        n = len(data) + t
        steps.append((kind, i % n, j % n, k % (len(UNARY) if kind == 0 else len(BINARY))))
    leaves = [ad.Value(v) for v in data]
    out = build(steps, leaves, [u[1] for u in UNARY], [b[1] for b in BINARY])
    out.backward()

    def f(*z):
        return build(steps, z, [u[2] for u in UNARY], [b[1] for b in BINARY])

    if not np.isfinite(out.data):
        return
    expected_value = f(*[jnp.float64(v) for v in data])
    expected = jax.grad(f, argnums=(0, 1, 2))(*[jnp.float64(v) for v in data])
    assert out.data == pytest.approx(float(expected_value), rel=1e-10, abs=1e-12)
    scale = max(1.0, *(abs(float(e)) for e in expected))
    for leaf, e in zip(leaves, expected):
        assert leaf.grad == pytest.approx(float(e), rel=1e-10, abs=1e-10 * scale)


def test_backward_accumulates_like_micrograd():
    x = ad.Value(3.0)
    y = x * x
    y.backward()
    assert x.grad == 6.0 and y.grad == 1.0
    y.backward()  # a second sweep adds
    assert x.grad == 12.0
    x.grad = 0.0
    (x * 2).backward()
    assert x.grad == 2.0


def test_micrograd_style_mlp_matches_jax():
    rng = np.random.default_rng(0)
    sizes = [3, 4, 4, 1]
    weights = [rng.standard_normal((m, n)) / np.sqrt(m) for m, n in zip(sizes[:-1], sizes[1:])]
    biases = [0.1 * rng.standard_normal(n) for n in sizes[1:]]
    xs = rng.standard_normal((4, 3))
    ys = np.array([1.0, -1.0, -1.0, 1.0])

    W = [[[ad.Value(w) for w in row] for row in layer] for layer in weights]
    B = [[ad.Value(b) for b in layer] for layer in biases]

    def forward(x):
        h = [ad.Value(v) for v in x]
        for depth, (Wl, Bl) in enumerate(zip(W, B)):
            z = [sum((h[i] * Wl[i][j] for i in range(len(h))), Bl[j]) for j in range(len(Bl))]
            h = [zj.tanh() if depth < len(W) - 1 else zj for zj in z]
        return h[0]

    loss = sum(((forward(x) - y) ** 2 for x, y in zip(xs, ys)), ad.Value(0.0)) / len(ys)
    loss.backward()

    def jax_loss(weights, biases):
        h = xs
        for depth, (Wl, bl) in enumerate(zip(weights, biases)):
            h = h @ Wl + bl
            h = jnp.tanh(h) if depth < len(weights) - 1 else h
        return jnp.mean((h[:, 0] - ys) ** 2)

    value = jax_loss(weights, biases)
    gw, gb = jax.grad(jax_loss, argnums=(0, 1))(weights, biases)
    assert loss.data == pytest.approx(float(value), rel=1e-12)
    for Wl, g in zip(W, gw):
        np.testing.assert_allclose([[w.grad for w in row] for row in Wl], g, rtol=1e-10, atol=1e-14)
    for Bl, g in zip(B, gb):
        np.testing.assert_allclose([b.grad for b in Bl], g, rtol=1e-10, atol=1e-14)


def test_a_chain_of_100000_values_needs_no_recursion():
    x = ad.Value(0.5)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    assert 100_000 > sys.getrecursionlimit()
    y.backward()
    assert x.grad == 1.0
    del y  # freeing the chain must not overflow the C stack either


def test_data_is_a_float_and_settable():
    v = ad.Value(2)
    assert isinstance(v.data, float) and v.data == 2.0
    v.data -= 0.5
    assert (v * 2).data == 3.0
    assert repr(ad.Value(1.5)) == "Value(data=1.5, grad=0.0)"
    with pytest.raises(ValueError, match="one scalar"):
        ad.Value(np.ones(2))


def test_values_are_hashable_by_identity_like_micrograd():
    a, b = ad.Value(1.0), ad.Value(1.0)
    assert len({a, b, a}) == 2


def test_value_inside_a_transformation_is_a_constant():
    c = ad.Value(3.0)
    assert ad.grad(lambda x: x * c.data)(2.0) == 3.0
