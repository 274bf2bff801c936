"""coursekit.mds: loss and gradient against JAX, classical MDS and Procrustes on exact data."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from coursekit import mds

pytestmark = pytest.mark.usefixtures("loud_floating_point_errors")


def jax_loss(W, D):
    # written independently of mds.loss: squared distances through the Gram matrix
    gram = W @ W.T
    squared = jnp.diag(gram)[:, None] + jnp.diag(gram)[None, :] - 2 * gram
    return jnp.sum((squared - D) ** 2)


JAX_LOSS_AND_GRADIENT = jax.jit(jax.value_and_grad(jax_loss))


def random_orthogonal(dim, rng):
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    return q * np.sign(np.diag(r))


@given(
    num_points=st.integers(1, 7),
    dim=st.integers(1, 4),
    symmetric=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_loss_and_gradient_match_jax(num_points, dim, symmetric, seed):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((num_points, dim))
    D = rng.uniform(0, 4, (num_points, num_points))
    if symmetric:
        D = D + D.T
    value, exact = JAX_LOSS_AND_GRADIENT(W, D)
    # both sides sum O(N^2) terms of size ~10-100: agreement to ~1e-12 relative
    assert mds.loss(W, D) == pytest.approx(float(value), rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(mds.gradient(W, D), exact, rtol=1e-10, atol=1e-10 * max(1.0, np.max(np.abs(exact))))


def test_gradient_for_symmetric_D_is_eight_sum_r_times_differences():
    rng = np.random.default_rng(0)
    W, D = rng.standard_normal((5, 2)), mds.random_problem(5, 2, seed=1)[1]
    residuals = mds.squared_distances(W) - D
    by_hand = np.array([8 * sum(residuals[i, j] * (W[i] - W[j]) for j in range(5)) for i in range(5)])
    np.testing.assert_allclose(mds.gradient(W, D), by_hand, rtol=1e-12)


def test_squared_distances():
    W = np.array([[0.0, 0.0], [3.0, 4.0], [1.0, 1.0]])
    np.testing.assert_array_equal(mds.squared_distances(W), [[0, 25, 2], [25, 0, 13], [2, 13, 0]])


def test_true_points_have_zero_loss_and_gradient():
    W_true, D = mds.random_problem(8, 3, seed=4)
    assert W_true.shape == (8, 3) and D.shape == (8, 8)
    assert mds.loss(W_true, D) == 0.0
    np.testing.assert_array_equal(mds.gradient(W_true, D), np.zeros((8, 3)))


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_classical_mds_recovers_the_points_up_to_a_rigid_motion(dim):
    W_true, D = mds.random_problem(12, dim, seed=dim)
    W = mds.classical_mds(D, dim)
    assert W.shape == (12, dim)
    np.testing.assert_allclose(W.mean(axis=0), 0.0, atol=1e-12)
    # exact up to round-off in the eigendecomposition: residuals ~ 1e-14 * |D|
    assert mds.loss(W, D) <= 1e-24 * np.sum(D**2)
    np.testing.assert_allclose(mds.procrustes_align(W, W_true), W_true, atol=1e-10)


def test_classical_mds_in_too_few_dimensions_is_the_best_it_can_do():
    W_true, D = mds.random_problem(10, 3, seed=5)
    flat = mds.classical_mds(D, 2)
    assert flat.shape == (10, 2)
    assert mds.loss(flat, D) > 1e-3 * np.sum(D**2)


def test_procrustes_align_undoes_rotation_reflection_and_translation():
    rng = np.random.default_rng(6)
    W_reference = rng.standard_normal((9, 3))
    for determinant in (+1, -1):  # a rotation, then a reflection
        rotation = random_orthogonal(3, rng)
        if np.sign(np.linalg.det(rotation)) != determinant:
            rotation[:, 0] *= -1
        moved = W_reference @ rotation + rng.standard_normal(3)
        np.testing.assert_allclose(mds.procrustes_align(moved, W_reference), W_reference, atol=1e-12)
    # distances are preserved: no scaling
    np.testing.assert_allclose(
        mds.squared_distances(mds.procrustes_align(2 * moved, W_reference)), 4 * mds.squared_distances(W_reference), rtol=1e-12
    )


def test_bad_shapes_and_values_raise():
    W, D = mds.random_problem(4, 2, seed=0)
    with pytest.raises(ValueError, match=r"D must be a square \(N, N\) matrix of squared distances, got shape \(4, 3\)"):
        mds.loss(W, D[:, :3])
    with pytest.raises(ValueError, match=r"D has shape \(3, 3\), but W has 4 points; D must be \(4, 4\)"):
        mds.gradient(W, D[:3, :3])
    with pytest.raises(ValueError, match=r"W must have shape \(N, d\).*got \(8,\)"):
        mds.loss(W.ravel(), D)
    with pytest.raises(ValueError, match="D must be finite"):
        mds.loss(W, np.where(np.eye(4) > 0, np.nan, D))
    with pytest.raises(TypeError, match="W must hold real numbers"):
        mds.squared_distances(W + 1j)
    with pytest.raises(ValueError, match=r"W has shape \(4, 2\), but W_reference has shape \(4, 3\)"):
        mds.procrustes_align(W, np.ones((4, 3)))
    with pytest.raises(ValueError, match="needs a symmetric D"):
        mds.classical_mds(D + np.triu(np.ones((4, 4)), 1), 2)
    with pytest.raises(ValueError, match=r"dim must be an integer in \[1, N = 4\], got 5"):
        mds.classical_mds(D, 5)
    with pytest.raises(ValueError, match="num_points must be a positive integer"):
        mds.random_problem(0)
