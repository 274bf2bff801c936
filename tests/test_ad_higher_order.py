"""Jacobians, Hessians, HVPs and nested derivatives of coursekit.ad against JAX; perturbation confusion."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coursekit import ad
from tests.ad_helpers import assert_all_close, assert_close

pytestmark = pytest.mark.usefixtures("loud_floating_point_errors")


def rosenbrock(x, xp):
    return xp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def soft_energy(x, xp):
    lse = ad.logsumexp(x) if xp is np else jax.nn.logsumexp(x)
    return lse + xp.sum(xp.tanh(x) * xp.sin(x[::-1])) + xp.mean(xp.sqrt(x * x + 1)) * xp.max(x)


def quadratic_form(x, xp):
    A = xp.reshape(xp.arange(1.0, 1.0 + x.size**2), (x.size, x.size)) / x.size**2
    return x @ (A @ x) / 2 + xp.prod(xp.array([1.0])) * xp.sum(xp.exp(-x**2))


def matrix_fn(X, xp):
    return xp.sum(xp.tanh(X @ X.T) ** 2) + xp.sum(X[:, 0] * X[:, -1])


SCALAR_FUNCTIONS = [(rosenbrock, (4,)), (soft_energy, (5,)), (matrix_fn, (3, 2))]


def vector_fn(x, xp):
    return xp.stack([xp.sum(xp.sin(x) * x), xp.prod(xp.array([2.0])) * x[0] * x[-1]] + [xp.exp(x[1]) * x[2]])


def matrix_out_fn(x, xp):
    return xp.reshape(xp.concatenate([xp.tanh(x), x**2]), (2, -1)) @ x[:, None] * xp.ones((1, 3))


@pytest.mark.parametrize("f, shape", SCALAR_FUNCTIONS, ids=lambda v: getattr(v, "__name__", str(v)))
def test_hessian_and_hvp_match_jax(f, shape):
    rng = np.random.default_rng(0)
    x, v = rng.standard_normal(shape), rng.standard_normal(shape)
    H = ad.hessian(lambda x: f(x, np))(x)
    assert H.shape == shape + shape
    # jit: JAX's own op-by-op Hessian is a hundred times slower than compiling it
    assert_close(H, jax.jit(jax.hessian(lambda x: f(x, jnp)))(x))
    theirs = jax.jit(lambda x, v: jax.jvp(jax.grad(lambda x: f(x, jnp)), (x,), (v,))[1])(x, v)
    assert_close(ad.hvp(lambda x: f(x, np), x, v), theirs)


@pytest.mark.parametrize("f, shape", [(vector_fn, (4,)), (matrix_out_fn, (4,))], ids=["vector", "matrix"])
@pytest.mark.parametrize("jac", ["jacfwd", "jacrev"])
def test_jacobians_match_jax(f, shape, jac):
    x = np.random.default_rng(1).standard_normal(shape)
    J = getattr(ad, jac)(lambda x: f(x, np))(x)
    assert_close(J, jax.jacfwd(lambda x: f(x, jnp))(x))


def test_jacobians_with_argnums_tuples():
    def f(x, y, xp):
        return xp.sin(x)[:, None] * y**2

    x, y = np.array([0.1, 0.7, -1.0]), np.array([[2.0, -0.5]])
    theirs = jax.jacrev(lambda x, y: f(x, y, jnp), (0, 1))(x, y)
    assert_all_close(ad.jacrev(lambda x, y: f(x, y, np), (0, 1))(x, y), theirs)
    assert_all_close(ad.jacfwd(lambda x, y: f(x, y, np), (0, 1))(x, y), theirs)


def test_hessian_blocks_with_argnums_tuple():
    def f(x, y, xp):
        return xp.sum(xp.exp(x) * y**3) + xp.sum(x**2) * xp.sum(y)

    x, y = np.array([0.3, -0.2, 0.1]), np.array([1.5, 0.5, 2.0])
    ours = ad.hessian(lambda x, y: f(x, y, np), (0, 1))(x, y)
    theirs = jax.jit(jax.hessian(lambda x, y: f(x, y, jnp), (0, 1)))(x, y)
    for i in range(2):
        assert_all_close(ours[i], theirs[i])


@pytest.mark.parametrize("f, shape", SCALAR_FUNCTIONS[:2], ids=["rosenbrock", "soft_energy"])
def test_every_nesting_of_the_two_modes_gives_the_hessian(f, shape):
    x = np.random.default_rng(2).standard_normal(shape)
    H = jax.jit(jax.hessian(lambda x: f(x, jnp)))(x)
    g = lambda x: f(x, np)  # noqa: E731
    assert_close(ad.jacfwd(ad.jacrev(g))(x), H)  # forward over reverse
    assert_close(ad.jacrev(ad.jacrev(g))(x), H)  # reverse over reverse
    assert_close(ad.jacrev(ad.jacfwd(g))(x), H)  # reverse over forward
    assert_close(ad.jacfwd(ad.jacfwd(g))(x), H)  # forward over forward


def test_third_derivatives():
    f = lambda x: np.sin(x) * np.exp(x / 2)  # noqa: E731
    fj = lambda x: jnp.sin(x) * jnp.exp(x / 2)  # noqa: E731
    third = jax.jit(jax.grad(jax.grad(jax.grad(fj))))
    for x in (0.3, -1.1):
        assert ad.grad(ad.grad(ad.grad(f)))(x) == pytest.approx(float(third(x)), rel=1e-12)
    x = np.array([0.2, -0.4, 1.0])
    ours = ad.jacfwd(ad.hessian(lambda x: np.sum(np.tanh(x) * x[0])))(x)
    assert_close(ours, jax.jit(jax.jacfwd(jax.hessian(lambda x: jnp.sum(jnp.tanh(x) * x[0]))))(x))


def test_perturbation_confusion():
    """d/dx [x * d/dy (x + y)] = d/dx [x * 1] = 1 (Siskind & Pearlmutter 2005); a naive nesting gives 2."""
    def outer(x):
        inner = lambda y: x + y  # noqa: E731  (x is the outer variable, a constant for the inner derivative)
        return x * ad.grad(inner)(np.float64(1.0))

    assert ad.grad(outer)(3.0) == 1.0
    # the same in forward mode, where the bug classically lives (dual numbers with one shared epsilon)
    def outer_forward(x):
        return x * ad.jvp(lambda y: x + y, (np.float64(1.0),), (np.float64(1.0),))[1]

    assert ad.jvp(outer_forward, (np.float64(3.0),), (np.float64(1.0),))[1] == 1.0
    # and mixed: forward outside, reverse inside
    assert ad.jvp(outer, (np.float64(3.0),), (np.float64(1.0),))[1] == 1.0


def test_perturbation_confusion_with_shared_variable():
    """d/dx [ d/dy (x * y) at y = x ]: the inner derivative is x, so the answer is 1, not 2."""
    f = lambda x: ad.grad(lambda y: x * y)(x)  # noqa: E731
    assert ad.grad(f)(2.0) == 1.0
    assert ad.jacfwd(f)(2.0) == 1.0
    fj = lambda x: jax.grad(lambda y: x * y)(x)  # noqa: E731
    assert float(jax.grad(fj)(2.0)) == 1.0


def test_hvp_of_the_mlp_loss_matches_jax():
    rng = np.random.default_rng(3)
    X, labels = rng.standard_normal((6, 4)), np.eye(3)[rng.integers(3, size=6)]
    W, V = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))

    def loss(W, xp, lse):
        logits = xp.tanh(X @ W)
        return -xp.mean(xp.sum(labels * (logits - lse(logits, axis=1, keepdims=True)), axis=1))

    ours = ad.hvp(lambda W: loss(W, np, ad.logsumexp), W, V)
    theirs = jax.jit(lambda W, V: jax.jvp(jax.grad(lambda W: loss(W, jnp, jax.nn.logsumexp)), (W,), (V,))[1])(W, V)
    assert_close(ours, theirs)
