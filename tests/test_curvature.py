"""coursekit.curvature: Hessian-vector products against jax.hessian, trace and diagonal estimators against theory."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coursekit import curvature

pytestmark = pytest.mark.usefixtures("loud_floating_point_errors")

# Monte-Carlo checks allow 5 standard errors: with fixed seeds they are
# deterministic, and a correct estimator lands outside with probability ~6e-7.
STANDARD_ERRORS = 5


def random_matrix(dim, seed, symmetric=True):
    A = np.random.default_rng(seed).standard_normal((dim, dim)) + 3 * np.eye(dim)
    return (A + A.T) / 2 if symmetric else A


def psd_with_spectrum(eigenvalues, seed):
    dim = len(eigenvalues)
    basis, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((dim, dim)))
    return (basis * eigenvalues) @ basis.T


def low_rank_psd(dim, rank, seed):
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((dim, rank)))
    return (basis * rng.uniform(1, 10, rank)) @ basis.T


def counted(matvec):
    calls = []

    def apply(v):
        calls.append(v)
        return matvec(v)

    return apply, calls


# --- Hessian-vector products ----------------------------------------------------------


def smooth_function(dim, seed, xp):
    """A random smooth non-quadratic scalar function with a dense Hessian, written with the namespace ``xp``.

    ``xp = numpy`` for coursekit.ad, ``xp = jax.numpy`` for JAX: the same formula twice.
    """
    rng = np.random.default_rng(seed)
    W, A, c = rng.standard_normal((dim, dim)), rng.standard_normal((dim, dim)), rng.standard_normal(dim)

    def f(x):
        return (
            xp.sum(xp.sin(W @ x))
            + 0.5 * x @ (A @ x)
            + xp.log1p(xp.exp(c @ x))
            + xp.exp(-xp.sum(x**2) / 4)
            + xp.sum(xp.tanh(x) ** 3)
        )

    return f


@pytest.mark.parametrize("backend, xp", [("jax", jnp), ("coursekit", np)])
@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("dim", [1, 3, 8])
def test_hvp_equals_the_full_hessian_times_v(dim, seed, backend, xp):
    rng = np.random.default_rng(100 + seed)
    x, v = rng.standard_normal(dim), rng.standard_normal(dim)
    expected = np.asarray(jax.hessian(smooth_function(dim, seed, jnp))(x)) @ v
    product = curvature.hvp(smooth_function(dim, seed, xp), x, v, backend=backend)
    np.testing.assert_allclose(product, expected, rtol=1e-10, atol=1e-10)


def test_hessian_matvec_is_the_hvp_closure_and_feeds_the_estimators():
    # f(x) = x^T A x / 2 + sum(x^4) / 12 has Hessian A + diag(x^2): trace known exactly
    A = random_matrix(6, seed=1)
    x = np.linspace(-1, 1, 6)
    f = lambda y: 0.5 * y @ (A @ y) + np.sum(y**4) / 12  # noqa: E731  (numpy: JAX traces it too)
    for backend in curvature.BACKENDS:
        matvec = curvature.hessian_matvec(f, x, backend=backend)
        np.testing.assert_allclose(matvec(np.eye(6)[2]), (A + np.diag(x**2))[:, 2], rtol=1e-12)
    # 21 matvecs give 7 >= 6 sketch columns: Gaussian ones span the whole space (almost surely), so Hutch++
    # is exact. Rademacher ones need not: a random 7 x 6 sign matrix is singular often enough (seed 0 is).
    estimate = curvature.hutchpp(matvec, 6, 21, seed=0, distribution="gaussian")
    assert estimate.estimate == pytest.approx(np.trace(A) + np.sum(x**2), rel=1e-10)


# --- Hutchinson and Hutch++: unbiased, variance, exactness, efficiency ----------------


def assert_unbiased(estimates, exact):
    estimates = np.asarray(estimates)
    standard_error = estimates.std(ddof=1) / np.sqrt(len(estimates))
    assert abs(estimates.mean() - exact) <= STANDARD_ERRORS * standard_error, (estimates.mean(), exact, standard_error)


@pytest.mark.parametrize("distribution", curvature.DISTRIBUTIONS)
def test_hutchinson_is_unbiased(distribution):
    A = random_matrix(10, seed=2, symmetric=False)
    matvec = curvature.matvec_from_matrix(A)
    estimates = [curvature.hutchinson(matvec, 10, 4, seed=s, distribution=distribution).estimate for s in range(3000)]
    assert_unbiased(estimates, np.trace(A))


@pytest.mark.parametrize("distribution", curvature.DISTRIBUTIONS)
def test_hutchpp_is_unbiased_on_a_full_rank_matrix(distribution):
    # 9 matvecs on a 20 x 20 matrix: the sketch sees 3 of 20 directions, the rest is Hutchinson's
    A = random_matrix(20, seed=3)
    matvec = curvature.matvec_from_matrix(A)
    estimates = [curvature.hutchpp(matvec, 20, 9, seed=s, distribution=distribution).estimate for s in range(3000)]
    assert_unbiased(estimates, np.trace(A))


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("distribution", curvature.DISTRIBUTIONS)
def test_variance_per_probe_matches_the_closed_form(distribution, symmetric):
    A = random_matrix(8, seed=4, symmetric=symmetric)
    matvec = curvature.matvec_from_matrix(A)
    n = 20000
    values = np.array([curvature.hutchinson(matvec, 8, 1, seed=s, distribution=distribution).estimate for s in range(n)])
    # the sample variance s^2 of n values has standard error sqrt((mu_4 - sigma^4) / n)
    centred = values - values.mean()
    sample_variance = np.mean(centred**2)
    tolerance = STANDARD_ERRORS * np.sqrt((np.mean(centred**4) - sample_variance**2) / n)
    expected = curvature.hutchinson_variance(A, distribution)
    assert abs(sample_variance - expected) <= tolerance, (sample_variance, expected, tolerance)
    # and the standard error hutchinson reports is that spread over sqrt(m)
    m = 5000
    reported = curvature.hutchinson(matvec, 8, m, seed=7, distribution=distribution).standard_error
    assert abs(reported**2 * m - expected) <= STANDARD_ERRORS * np.sqrt((np.mean(centred**4) - sample_variance**2) / m)


def test_variance_closed_forms_on_a_small_example():
    A = np.array([[2.0, 1.0], [1.0, -3.0]])
    # Gaussian 2 ||A||_F^2 = 2 (4 + 1 + 1 + 9); Rademacher keeps only the off-diagonal 2 (1 + 1)
    assert curvature.hutchinson_variance(A, "gaussian") == 30.0
    assert curvature.hutchinson_variance(A, "rademacher") == 4.0
    # non-symmetric: only the symmetric part counts, so 2 ||A||_F^2 would be wrong
    B = np.array([[0.0, 2.0], [0.0, 0.0]])
    assert curvature.hutchinson_variance(B, "gaussian") == 4.0 != 2 * np.sum(B**2)
    assert curvature.hutchinson_variance(np.diag([1.0, 5.0]), "rademacher") == 0.0


@pytest.mark.parametrize("distribution", curvature.DISTRIBUTIONS)
@pytest.mark.parametrize("rank", [1, 3, 6])
@pytest.mark.parametrize("extra", [0, 1, 2, 9])
def test_hutchpp_is_exact_on_low_rank_matrices_once_the_sketch_spans_the_range(rank, extra, distribution):
    # floor(m/3) >= r sketch columns span range(A) (almost surely), so Q Q^T A = A, the deflated matrix is 0
    # and tr(Q^T A Q) = tr(A): m = 3r is enough, whatever the remainder of m.
    A = low_rank_psd(40, rank, seed=rank)
    matvec, calls = counted(curvature.matvec_from_matrix(A))
    num_matvecs = 3 * rank + extra
    result = curvature.hutchpp(matvec, 40, num_matvecs, seed=11, distribution=distribution)
    assert result.estimate == pytest.approx(np.trace(A), rel=1e-10)
    if num_matvecs - 2 * rank == 1:  # a single Hutchinson probe has no standard error
        assert np.isnan(result.standard_error)
    else:
        assert result.standard_error < 1e-10 * np.trace(A)
    assert result.num_matvecs == len(calls) == num_matvecs


@pytest.mark.parametrize("rank", [2, 5])
def test_hutchpp_is_not_exact_with_a_sketch_smaller_than_the_rank(rank):
    A = low_rank_psd(40, rank, seed=rank)
    result = curvature.hutchpp(curvature.matvec_from_matrix(A), 40, 3 * rank - 3, seed=11)
    assert abs(result.estimate - np.trace(A)) > 1e-6


def test_hutchpp_spends_exactly_its_budget_when_the_sketch_is_rank_deficient():
    # rank 1 but 10 sketch columns: Q has 1 column, and the 9 saved matvecs go to the Hutchinson part
    A = low_rank_psd(30, 1, seed=0)
    matvec, calls = counted(curvature.matvec_from_matrix(A))
    result = curvature.hutchpp(matvec, 30, 30, seed=0)
    assert result.num_matvecs == len(calls) == 30
    assert result.estimate == pytest.approx(np.trace(A), rel=1e-10)
    zero, zero_calls = counted(curvature.matvec_from_matrix(np.zeros((5, 5))))
    assert curvature.hutchpp(zero, 5, 7, seed=0) == (0.0, 0.0, 7) and len(zero_calls) == 7


def test_hutchpp_needs_far_fewer_matvecs_than_hutchinson_on_a_decaying_spectrum():
    eigenvalues = 1.0 / np.arange(1, 201) ** 2
    matvec = curvature.matvec_from_matrix(psd_with_spectrum(eigenvalues, seed=5))
    exact = eigenvalues.sum()

    def mean_squared_error(estimator, budget):
        return np.mean([(estimator(matvec, 200, budget, seed=s).estimate - exact) ** 2 for s in range(200)])

    # equal budgets: Hutch++'s mean squared error is over 10 times smaller at 12 matvecs and over 100
    # times at 30 (about 30 and 500 times with these seeds): O(1/m^2) against O(1/m)
    assert mean_squared_error(curvature.hutchpp, 12) < mean_squared_error(curvature.hutchinson, 12) / 10
    assert mean_squared_error(curvature.hutchpp, 30) < mean_squared_error(curvature.hutchinson, 30) / 100
    # and 12 matvecs of Hutch++ beat 99 of Hutchinson
    assert mean_squared_error(curvature.hutchpp, 12) < mean_squared_error(curvature.hutchinson, 99)


def test_trace_estimates_are_reproducible_from_the_seed():
    matvec = curvature.matvec_from_matrix(random_matrix(10, seed=6))
    for estimator in (curvature.hutchinson, curvature.hutchpp):
        assert estimator(matvec, 10, 9, seed=3) == estimator(matvec, 10, 9, seed=np.random.default_rng(3))
        assert estimator(matvec, 10, 9, seed=3) != estimator(matvec, 10, 9, seed=4)


def test_one_probe_has_no_standard_error():
    matvec = curvature.matvec_from_matrix(np.eye(3))
    assert np.isnan(curvature.hutchinson(matvec, 3, 1, seed=0).standard_error)
    assert np.all(np.isnan(curvature.diagonal_estimate(matvec, 3, 1, seed=0).standard_error))


# --- the diagonal estimator ------------------------------------------------------------


@pytest.mark.parametrize("distribution", curvature.DISTRIBUTIONS)
def test_diagonal_estimate_is_unbiased_and_reports_its_spread(distribution):
    A = random_matrix(6, seed=8, symmetric=False)
    matvec = curvature.matvec_from_matrix(A)
    runs = [curvature.diagonal_estimate(matvec, 6, 10, seed=s, distribution=distribution) for s in range(3000)]
    diagonals = np.array([run.diagonal for run in runs])
    standard_error = diagonals.std(axis=0, ddof=1) / np.sqrt(len(runs))
    assert np.all(np.abs(diagonals.mean(axis=0) - np.diag(A)) <= STANDARD_ERRORS * standard_error)
    # the reported standard error is, on average, close to the spread across seeds
    # (within 15%: the linearised ratio standard error is slightly biased for 10 Gaussian probes)
    reported = np.sqrt(np.mean([run.standard_error**2 for run in runs], axis=0))
    np.testing.assert_allclose(reported, diagonals.std(axis=0), rtol=0.15)


def test_diagonal_estimate_is_exact_for_diagonal_matrices_with_rademacher_probes():
    d = np.array([1.0, -2.0, 3.5])
    result = curvature.diagonal_estimate(curvature.matvec_from_matrix(np.diag(d)), 3, 4, seed=0)
    np.testing.assert_allclose(result.diagonal, d, rtol=1e-15)
    np.testing.assert_allclose(result.standard_error, 0.0, atol=1e-15)


# --- bad input -------------------------------------------------------------------------


def test_bad_matvecs_are_named():
    estimators = [curvature.hutchinson, curvature.hutchpp, curvature.diagonal_estimate]
    for estimator in estimators:
        with pytest.raises(ValueError, match=r"shape \(4,\)"):
            estimator(lambda v: np.ones(3), 4, 3, seed=0)
        with pytest.raises(ValueError, match="non-finite"):
            estimator(lambda v: v * np.nan, 4, 3, seed=0)
        with pytest.raises(TypeError, match="real numbers"):
            estimator(lambda v: v * 1j, 4, 3, seed=0)
        with pytest.raises(TypeError, match="callable"):
            estimator(np.eye(4), 4, 3, seed=0)


def test_bad_parameters_are_named():
    matvec = curvature.matvec_from_matrix(np.eye(4))
    with pytest.raises(ValueError, match="dim"):
        curvature.hutchinson(matvec, 0, 3, seed=0)
    with pytest.raises(ValueError, match="num_samples"):
        curvature.hutchinson(matvec, 4, 0, seed=0)
    with pytest.raises(ValueError, match="num_samples"):
        curvature.diagonal_estimate(matvec, 4, 2.5, seed=0)
    with pytest.raises(ValueError, match="num_matvecs must be an integer >= 3"):
        curvature.hutchpp(matvec, 4, 2, seed=0)
    with pytest.raises(ValueError, match="unknown distribution 'uniform'"):
        curvature.hutchinson(matvec, 4, 3, seed=0, distribution="uniform")
    with pytest.raises(TypeError, match="seed"):
        curvature.hutchinson(matvec, 4, 3, seed=None)
    with pytest.raises(TypeError, match="seed"):
        curvature.hutchpp(matvec, 4, 3, seed=1.5)
    with pytest.raises(ValueError, match="square"):
        curvature.matvec_from_matrix(np.ones((2, 3)))
    with pytest.raises(ValueError, match="finite"):
        curvature.hutchinson_variance(np.full((2, 2), np.inf))
    with pytest.raises(ValueError, match="unknown distribution"):
        curvature.hutchinson_variance(np.eye(2), "sphere")


def test_bad_hvp_arguments_are_named():
    f = lambda x: jnp.sum(x**2)  # noqa: E731
    with pytest.raises(ValueError, match=r"direction v has shape \(2,\), but x has shape \(3,\)"):
        curvature.hvp(f, np.ones(3), np.ones(2), backend="jax")
    with pytest.raises(ValueError, match="unknown backend 'torch'"):
        curvature.hvp(f, np.ones(3), np.ones(3), backend="torch")
    with pytest.raises(ValueError, match="finite"):
        curvature.hvp(f, np.array([1.0, np.nan]), np.ones(2), backend="jax")
    with pytest.raises(ValueError, match="not finite"):
        curvature.hvp(lambda x: jnp.sum(jnp.sqrt(x)), np.zeros(2), np.ones(2), backend="jax")
    with np.errstate(divide="ignore", invalid="ignore"), pytest.raises(ValueError, match="not finite"):
        curvature.hvp(lambda x: np.sum(np.sqrt(x)), np.zeros(2), np.ones(2), backend="coursekit")
