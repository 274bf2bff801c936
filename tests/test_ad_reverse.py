"""coursekit.ad reverse mode (vjp, grad, value_and_grad) against JAX, op by op and on an MLP."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

from coursekit import ad
from tests.ad_helpers import CASES, REDUCTIONS, assert_all_close, assert_close, axes_for

pytestmark = pytest.mark.usefixtures("loud_floating_point_errors")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_vjp_matches_jax(case):
    args = case.args(seed=1)
    value, vjp_fn = ad.vjp(case.numpy, *args)
    jax_value, jax_vjp_fn = jax.vjp(case.jax, *args)
    assert_close(value, jax_value)
    cotangent = np.random.default_rng(2).standard_normal(np.shape(jax_value))
    assert_all_close(vjp_fn(cotangent), jax_vjp_fn(jnp.asarray(cotangent)))


@pytest.mark.parametrize("case", CASES[::3], ids=lambda c: c.name)
def test_grad_of_weighted_sum_matches_jax(case):
    args = case.args(seed=3)
    weights = np.random.default_rng(4).standard_normal(np.shape(case.numpy(*args)))
    argnums = tuple(range(len(args)))
    value, grads = ad.value_and_grad(lambda *a: np.sum(case.numpy(*a) * weights), argnums)(*args)
    jax_value, jax_grads = jax.value_and_grad(lambda *a: jnp.sum(case.jax(*a) * weights), argnums)(*args)
    assert_close(value, jax_value)
    assert_all_close(grads, jax_grads)


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min"])
@settings(max_examples=4)
@given(shape=array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4), seed=st.integers(0, 2**16))
def test_reductions_every_axis(name, shape, seed):
    reduce = REDUCTIONS[name]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    settings_ = [(axis, keepdims) for axis in axes_for(len(shape)) for keepdims in (False, True)]

    def all_reductions(x, xp):
        return [reduce(xp, x, axis=axis, keepdims=keepdims) ** 2 for axis, keepdims in settings_]

    cotangents = [rng.standard_normal(np.shape(y)) for y in all_reductions(x, np)]
    values, vjp_fn = ad.vjp(lambda x: tuple(all_reductions(x, np)), x)
    # one compiled JAX function for all settings: JAX's op-by-op mode costs far more than coursekit here
    @jax.jit
    def jax_vjp(x, c):
        values, vjp_fn = jax.vjp(lambda x: all_reductions(x, jnp), x)
        return values, vjp_fn(c)

    jax_values, jax_cotangent = jax_vjp(x, cotangents)
    assert_all_close(values, jax_values)
    assert_all_close(vjp_fn(tuple(cotangents)), jax_cotangent)


@pytest.mark.parametrize("name", ["amax", "sum method", "mean method", "max method"])
@pytest.mark.parametrize("axis", [None, 1, (0, -1)])
def test_reduction_spellings(name, axis):
    reduce = REDUCTIONS[name]
    x = np.random.default_rng(9).standard_normal((3, 2, 4))
    for keepdims in (False, True):
        ours = ad.grad(lambda x: np.sum(reduce(np, x, axis=axis, keepdims=keepdims) ** 2))(x)
        assert_close(ours, jax.grad(lambda x: jnp.sum(reduce(jnp, x, axis=axis, keepdims=keepdims) ** 2))(x))


def test_max_ties_share_the_gradient_like_jax():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    assert_close(ad.grad(lambda x: np.sum(np.max(x, axis=1)))(x), jax.grad(lambda x: jnp.sum(jnp.max(x, axis=1)))(x))
    y = np.array([1.0, 2.0, 3.0])
    ours = ad.grad(lambda x, y: np.sum(np.maximum(x, y)), (0, 1))(y, y)
    assert_all_close(ours, jax.grad(lambda x, y: jnp.sum(jnp.maximum(x, y)), (0, 1))(y, y))


_jax_broadcast_grad = jax.jit(jax.grad(lambda x, y: jnp.sum(jnp.sin(x * y + x) / (1 + (x - y) ** 2)), (0, 1)))


@given(shapes=st.sampled_from([((3, 1), (1, 4)), ((2, 1, 3), (4, 1)), ((), (2, 2)), ((5,), (3, 1)), ((1,), ())]),
       seed=st.integers(0, 2**16))
def test_broadcasting_sums_over_broadcast_axes(shapes, seed):
    rng = np.random.default_rng(seed)
    x, y = (rng.standard_normal(s) for s in shapes)

    def f(x, y, xp):
        return xp.sum(xp.sin(x * y + x) / (1 + (x - y) ** 2))

    grads = ad.grad(lambda x, y: f(x, y, np), (0, 1))(x, y)
    assert [g.shape for g in grads] == [x.shape, y.shape]
    assert_all_close(grads, _jax_broadcast_grad(x, y))


def _mlp_loss(params, x, onehot, xp, logsumexp):
    h = x
    for W, b in zip(params[0:-2:2], params[1:-2:2]):
        h = xp.maximum(h @ W + b, 0) + 0.1 * xp.tanh(h @ W)
    logits = h @ params[-2] + params[-1]
    log_probs = logits - logsumexp(logits, axis=1, keepdims=True)
    return -xp.mean(xp.sum(onehot * log_probs, axis=1))


def _mlp_problem(dtype, layers=(6, 8, 5, 3), batch=7, seed=0):
    rng = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out in zip(layers[:-1], layers[1:]):
        params += [(rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(dtype),
                   (0.1 * rng.standard_normal(fan_out)).astype(dtype)]
    x = rng.standard_normal((batch, layers[0])).astype(dtype)
    onehot = np.eye(layers[-1], dtype=dtype)[rng.integers(layers[-1], size=batch)]
    return params, x, onehot


def test_mlp_softmax_cross_entropy_gradients_match_jax():
    params, x, onehot = _mlp_problem(np.float64)
    argnums = tuple(range(len(params)))
    value, grads = ad.value_and_grad(lambda *p: _mlp_loss(p, x, onehot, np, ad.logsumexp), argnums)(*params)
    jax_loss = jax.jit(jax.value_and_grad(lambda *p: _mlp_loss(p, x, onehot, jnp, jax.nn.logsumexp), argnums))
    jax_value, jax_grads = jax_loss(*params)
    assert_close(value, jax_value)
    assert_all_close(grads, jax_grads)


def test_float32_stays_float32():
    params, x, onehot = _mlp_problem(np.float32)
    argnums = tuple(range(len(params)))
    value, grads = ad.value_and_grad(lambda *p: _mlp_loss(p, x, onehot, np, ad.logsumexp), argnums)(*params)
    assert value.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads)
    in_float64 = [p.astype(np.float64) for p in params]
    reference = ad.grad(lambda *p: _mlp_loss(p, x, onehot, np, ad.logsumexp), argnums)(*in_float64)
    for g, r in zip(grads, reference):
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-5)
    # a float32 input against float64 constants gets a float32 gradient, as in JAX
    v = np.ones(3, np.float32)
    assert ad.grad(lambda v: np.sum(v * np.arange(3.0)))(v).dtype == np.float32
    _, tangent = ad.jvp(lambda v: np.tanh(v) * 2.5, (v,), (v,))
    assert tangent.dtype == np.float32


def test_vjp_of_several_outputs_and_unused_inputs():
    x, y = np.array([1.0, 2.0]), np.array(3.0)
    (a, b), vjp_fn = ad.vjp(lambda x, y: (x * y, np.sum(x)), x, y)
    assert_close(a, x * y)
    gx, gy = vjp_fn((np.array([1.0, 10.0]), np.array(100.0)))
    assert_close(gx, [3 + 100, 30 + 100])
    assert_close(gy, 21.0)
    assert_all_close(ad.grad(lambda x, y: np.sum(x) * 2, (0, 1))(x, y), (np.full(2, 2.0), np.zeros(())))


def test_grad_conventions():
    f = lambda x, y: np.sum(x**2) * y  # noqa: E731
    x, y = np.array([1.0, -2.0]), 3.0
    assert_close(ad.grad(f)(x, y), 2 * x * y)
    assert_close(ad.grad(f, argnums=1)(x, y), 5.0)
    assert_close(ad.grad(f, argnums=-1)(x, y), 5.0)
    gx, gy = ad.grad(f, argnums=(0, 1))(x, y)
    assert_close(gx, 2 * x * y) and assert_close(gy, 5.0)
    value, g = ad.value_and_grad(f)(x, y)
    assert_close(value, 15.0)
    assert ad.grad(lambda x: x**3)(2.0) == pytest.approx(12.0)
    with pytest.raises(ValueError, match="argnums"):
        ad.grad(f, argnums=2)(x, y)


def test_gradients_are_writable_arrays():
    g = ad.grad(lambda x: np.sum(x))(np.ones(3))
    g += 1  # not a read-only broadcast view
    assert_close(g, np.full(3, 2.0))


def test_repeated_vjp_calls_reuse_the_graph():
    x = np.array([0.3, -1.2, 2.0])
    _, vjp_fn = ad.vjp(lambda x: np.exp(x) * np.sin(x), x)
    for k in range(3):
        e = np.eye(3)[k]
        assert_close(vjp_fn(e)[0], e * (np.exp(x) * np.sin(x) + np.exp(x) * np.cos(x)))


def test_containers_of_arrays_as_arguments_and_outputs():
    params, x, onehot = _mlp_problem(np.float64)
    as_list = list(params)
    grads = ad.grad(lambda p: _mlp_loss(p, x, onehot, np, ad.logsumexp))(as_list)
    jax_grads = jax.grad(lambda p: _mlp_loss(p, x, onehot, jnp, jax.nn.logsumexp))(as_list)
    assert isinstance(grads, list) and len(grads) == len(params)
    assert_all_close(grads, jax_grads)

    tree = {"w": np.array([1.0, 2.0]), "pair": (np.array(3.0), [np.array([0.5])])}

    def f(t, s):
        return {"a": np.sum(t["w"] * t["pair"][0]) * s, "b": t["pair"][1][0] ** 2}

    out, vjp_fn = ad.vjp(f, tree, 2.0)
    assert set(out) == {"a", "b"}
    g_tree, g_s = vjp_fn({"a": np.array(1.0), "b": np.array([1.0])})
    assert_close(g_tree["w"], [6.0, 6.0])
    assert_close(g_tree["pair"][0], 6.0)
    assert_close(g_tree["pair"][1][0], [1.0])
    assert_close(g_s, 9.0)
    with pytest.raises(TypeError, match="nested like"):
        vjp_fn(np.array(1.0))
    direction = {"w": np.ones(2), "pair": (np.array(0.0), [np.zeros(1)])}
    value, tangent = ad.jvp(f, (tree, 2.0), (direction, 0.0))
    assert_close(value["a"], 18.0)
    assert_close(tangent["a"], 3.0 * 2.0 * 2) and assert_close(tangent["b"], [0.0])
    with pytest.raises(ValueError, match="nested like"):
        ad.jvp(f, (tree, 2.0), ([np.ones(2)], 0.0))
