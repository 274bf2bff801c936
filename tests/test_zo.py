"""coursekit.zo: the estimators' mean and variance against theory, the driver against closed forms."""

import numpy as np
import pytest

from coursekit import fd, zo

pytestmark = pytest.mark.usefixtures("loud_floating_point_errors")

# Monte-Carlo checks allow 5 standard errors: with fixed seeds they are
# deterministic, and a correct estimator lands outside with probability ~6e-7
# per coordinate.
STANDARD_ERRORS = 5
TAU = 1e-3  # exact along lines for quadratics (central) or zero-mean error (forward)


def problem(dim, seed=0):
    quadratic = zo.quadratic_problem(dim, mu=1.0, L=10.0, seed=seed)
    x = np.random.default_rng(seed + 1).standard_normal(dim)
    return quadratic, x, quadratic.gradient(x)


def estimates(quadratic, x, distribution, scheme, scale, num, seed):
    """``num`` independent single-direction estimates, one per row."""
    directions = zo.random_directions(num, x.size, distribution, seed)
    return np.array([zo.two_point_estimate(quadratic.f, x, u, TAU, scale, scheme) for u in directions])


def assert_mean_within_standard_errors(samples, expected):
    mean = samples.mean(axis=0)
    standard_error = samples.std(axis=0, ddof=1) / np.sqrt(len(samples))
    # the round-off floor matters only where the samples are constant (sphere, d = 2)
    allowed = STANDARD_ERRORS * standard_error + 1e-12 * np.maximum(1, np.abs(expected))
    assert np.all(np.abs(mean - expected) <= allowed), (mean, expected, standard_error)
    return standard_error


# --- the estimators -----------------------------------------------------------


@pytest.mark.parametrize("distribution", zo.DISTRIBUTIONS)
@pytest.mark.parametrize("scheme", zo.SCHEMES)
def test_estimator_is_unbiased_for_quadratics(distribution, scheme):
    # gaussian + forward is Nesterov-Spokoiny's estimator of grad f_tau, and for a
    # quadratic grad f_tau = grad f; sphere needs the factor d.
    quadratic, x, g = problem(dim=5)
    scale = zo.direction_scale(distribution, 5)
    assert_mean_within_standard_errors(estimates(quadratic, x, distribution, scheme, scale, 4000, seed=11), g)


def test_sphere_estimator_without_the_factor_d_is_biased_by_one_over_d():
    quadratic, x, g = problem(dim=5)
    samples = estimates(quadratic, x, "sphere", "central", 1.0, 4000, seed=12)
    standard_error = assert_mean_within_standard_errors(samples, g / 5)
    # and it is nowhere near g itself
    assert np.linalg.norm(samples.mean(axis=0) - g) > 50 * np.linalg.norm(standard_error)


@pytest.mark.parametrize("distribution, excess", [("sphere", -1), ("gaussian", +1)])
def test_variance_grows_with_dimension_as_theory_says(distribution, excess):
    # E||G - g||^2 / ||g||^2 = d - 1 (sphere), d + 1 (gaussian) for the central scheme
    for dim in (2, 4, 8, 16):
        quadratic, x, g = problem(dim, seed=dim)
        samples = estimates(quadratic, x, distribution, "central", zo.direction_scale(distribution, dim), 2000, seed=dim)
        relative = np.sum((samples - g) ** 2, axis=1) / np.sum(g**2)
        assert_mean_within_standard_errors(relative[:, np.newaxis], dim + excess)


def test_many_directions_average_the_single_direction_estimates():
    quadratic, x, _ = problem(dim=4)
    directions = zo.random_directions(6, 4, "gaussian", seed=3)
    for scheme in zo.SCHEMES:
        together = zo.two_point_estimate(quadratic.f, x, directions, TAU, 2.0, scheme)
        alone = [zo.two_point_estimate(quadratic.f, x, u, TAU, 2.0, scheme) for u in directions]
        np.testing.assert_allclose(together, np.mean(alone, axis=0), rtol=1e-12)


def test_two_point_estimate_is_the_formula():
    f = lambda y: np.sum(np.sin(y))  # noqa: E731
    x, u = np.array([[0.3, -0.2]]), np.array([[0.6, 0.8]])
    central = 3.0 * (f(x + TAU * u) - f(x - TAU * u)) / (2 * TAU) * u
    forward = 3.0 * (f(x + TAU * u) - f(x)) / TAU * u
    np.testing.assert_allclose(zo.two_point_estimate(f, x, u, TAU, 3.0), central, rtol=1e-12)
    np.testing.assert_allclose(zo.two_point_estimate(f, x, u, TAU, 3.0, "forward"), forward, rtol=1e-12)


def test_zero_order_gradient_is_reproducible_and_takes_a_generator():
    quadratic, x, _ = problem(dim=6)
    first = zo.zero_order_gradient(quadratic.f, x, num_directions=3, seed=7)
    np.testing.assert_array_equal(first, zo.zero_order_gradient(quadratic.f, x, num_directions=3, seed=7))
    assert not np.allclose(first, zo.zero_order_gradient(quadratic.f, x, num_directions=3, seed=8))
    rng = np.random.default_rng(7)
    np.testing.assert_array_equal(first, zo.zero_order_gradient(quadratic.f, x, num_directions=3, seed=rng))
    # the generator was advanced: the next draw is new
    assert not np.allclose(first, zo.zero_order_gradient(quadratic.f, x, num_directions=3, seed=rng))


def test_zero_order_gradient_keeps_the_shape_of_x():
    f = lambda y: np.sum(y**2)  # noqa: E731
    for shape in [(), (3,), (2, 3)]:
        assert zo.zero_order_gradient(f, np.ones(shape), num_directions=2, distribution="gaussian", seed=0).shape == shape


def test_random_directions():
    sphere = zo.random_directions(1000, 3, "sphere", seed=0)
    assert sphere.shape == (1000, 3)
    np.testing.assert_allclose(np.linalg.norm(sphere, axis=1), 1.0, rtol=1e-14)
    gaussian = zo.random_directions(1000, 3, "gaussian", seed=0)
    # same seed, same underlying normals: the sphere is the normalised gaussian
    np.testing.assert_allclose(sphere, gaussian / np.linalg.norm(gaussian, axis=1, keepdims=True), rtol=1e-14)
    assert zo.direction_scale("sphere", 7) == 7.0 and zo.direction_scale("gaussian", 7) == 1.0


def test_coordinate_estimate_is_the_central_difference():
    quadratic, x, g = problem(dim=5)
    estimate = zo.coordinate_estimate(quadratic.f, x, step=1e-3)
    np.testing.assert_array_equal(estimate, fd.gradient(quadratic.f, x, "central", step=1e-3))
    np.testing.assert_allclose(estimate, g, rtol=1e-9)


# --- the driver ---------------------------------------------------------------


def test_plain_gradient_descent_follows_the_closed_form():
    # x_k - x* = (I - alpha A)^k (x_0 - x*)
    quadratic, x0, _ = problem(dim=4)
    alpha, K = 0.1, 25
    history = zo.gradient_descent(quadratic.f, x0, zo.exact_oracle(quadratic.gradient), alpha, K, record_points=True)
    contraction = np.eye(4) - alpha * quadratic.A
    expected = [quadratic.x_star + np.linalg.matrix_power(contraction, k) @ (x0 - quadratic.x_star) for k in range(K + 1)]
    np.testing.assert_allclose(history.points, expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(history.values, [quadratic.f(p) for p in expected], rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(history.x, history.points[-1])
    assert history.iterations == K
    np.testing.assert_array_equal(history.gradient_evals, np.arange(K + 1))
    np.testing.assert_array_equal(history.function_evals, np.zeros(K + 1))


@pytest.mark.parametrize(
    "oracle, calls_per_iteration",
    [
        (zo.two_point_oracle(num_directions=1), 2),
        (zo.two_point_oracle(num_directions=3), 6),
        (zo.two_point_oracle(num_directions=3, scheme="forward"), 4),
        (zo.two_point_oracle(num_directions=2, distribution="gaussian"), 4),
        (zo.coordinate_oracle(), 2 * 5),
    ],
)
def test_function_evaluations_are_counted_exactly(oracle, calls_per_iteration):
    quadratic, x0, _ = problem(dim=5)
    history = zo.gradient_descent(quadratic.f, x0, oracle, 0.01, 7, seed=0)
    np.testing.assert_array_equal(history.function_evals, calls_per_iteration * np.arange(8))
    np.testing.assert_array_equal(history.gradient_evals, np.zeros(8))
    assert history.points is None


def test_a_reused_exact_oracle_counts_each_run_from_zero():
    quadratic, x0, _ = problem(dim=3)
    oracle = zo.exact_oracle(quadratic.gradient)
    for _ in range(2):
        history = zo.gradient_descent(quadratic.f, x0, oracle, 0.1, 4)
        np.testing.assert_array_equal(history.gradient_evals, np.arange(5))
    assert oracle.gradient_calls() == 8


def test_early_stopping_at_the_first_iterate_within_tolerance():
    quadratic, x0, _ = problem(dim=4)
    oracle = zo.exact_oracle(quadratic.gradient)
    full = zo.gradient_descent(quadratic.f, x0, oracle, 0.1, 200)
    tolerance = 1e-6
    first = zo.iterations_to_reach(full, quadratic.f_star, tolerance)
    assert first is not None and 0 < first < 200
    stopped = zo.gradient_descent(quadratic.f, x0, oracle, 0.1, 200, f_star=quadratic.f_star, tolerance=tolerance)
    assert stopped.iterations == first
    assert len(stopped.values) == len(stopped.function_evals) == len(stopped.gradient_evals) == first + 1
    assert stopped.values[-1] <= tolerance < stopped.values[-2]
    assert zo.iterations_to_reach(full, quadratic.f_star, 1e-300) is None
    # a start already within tolerance runs no iteration at all
    done = zo.gradient_descent(quadratic.f, quadratic.x_star, oracle, 0.1, 200, f_star=0.0, tolerance=tolerance)
    assert done.iterations == 0 and len(done.values) == 1


def test_a_step_schedule_is_called_with_k():
    quadratic, x0, _ = problem(dim=3)
    seen = []

    def schedule(k):
        seen.append(k)
        return 0.2 / (k + 1)

    history = zo.gradient_descent(quadratic.f, x0, zo.exact_oracle(quadratic.gradient), schedule, 5)
    assert seen == [0, 1, 2, 3, 4]
    x = x0
    for k in range(5):
        x = x - 0.2 / (k + 1) * quadratic.gradient(x)
    np.testing.assert_allclose(history.x, x, rtol=1e-14)


def test_zero_order_runs_are_reproducible_from_the_seed():
    quadratic, x0, _ = problem(dim=4)
    run = lambda seed: zo.gradient_descent(quadratic.f, x0, zo.two_point_oracle(), 0.02, 30, seed=seed)  # noqa: E731
    np.testing.assert_array_equal(run(3).values, run(3).values)
    assert not np.allclose(run(3).values, run(4).values)


def test_progress_bar_does_not_change_the_run(capsys):
    quadratic, x0, _ = problem(dim=3)
    quiet = zo.gradient_descent(quadratic.f, x0, zo.two_point_oracle(), 0.02, 10, seed=1)
    loud = zo.gradient_descent(quadratic.f, x0, zo.two_point_oracle(), 0.02, 10, seed=1, progress=True)
    np.testing.assert_array_equal(quiet.values, loud.values)
    assert "gradient descent" in capsys.readouterr().err


def test_zero_order_descent_converges_on_a_quadratic():
    dim, L = 10, 10.0
    quadratic, x0, _ = problem(dim)
    # the best constant step for sphere directions is 1/(d L)
    history = zo.gradient_descent(quadratic.f, x0, zo.two_point_oracle(), 1 / (dim * L), 3000, seed=0)
    assert history.values[-1] <= 1e-8 * history.values[0]


def test_zero_order_needs_about_n_times_more_iterations():
    # GD with step 1/L against sphere ZO with step 1/(nL), to the same relative
    # accuracy from a start with equal weight on every eigenvector. Theory:
    # iterations(ZO) / iterations(GD) ~ n, a slope of 1 in log-log. Over 20
    # choices of seeds the fitted slope had mean 1.11 and sd 0.07 (GD's count
    # falls slightly with n); the band allows about 4 sd.
    dims, L = (4, 8, 16, 32), 10.0
    ratios = []
    for dim in dims:
        quadratic = zo.quadratic_problem(dim, mu=1.0, L=L, seed=dim)
        eigenvectors = np.linalg.eigh(quadratic.A)[1]
        x0 = quadratic.x_star + eigenvectors @ np.ones(dim)
        target = dict(f_star=quadratic.f_star, tolerance=1e-4 * quadratic.f(x0))
        exact = zo.gradient_descent(quadratic.f, x0, zo.exact_oracle(quadratic.gradient), 1 / L, 10**4, **target)
        zero_order = [
            zo.gradient_descent(quadratic.f, x0, zo.two_point_oracle(), 1 / (dim * L), 10**4, seed=[dim, s], **target)
            for s in range(4)
        ]
        assert exact.iterations < 10**4 and all(run.iterations < 10**4 for run in zero_order)
        ratios.append(np.mean([run.iterations for run in zero_order]) / exact.iterations)
    slope = np.polyfit(np.log(dims), np.log(ratios), 1)[0]
    assert 0.8 <= slope <= 1.4, (ratios, slope)


def test_quadratic_problem():
    quadratic = zo.quadratic_problem(6, mu=0.5, L=4.0, seed=2)
    np.testing.assert_allclose(np.linalg.eigvalsh(quadratic.A), np.linspace(0.5, 4.0, 6), rtol=1e-12)
    assert quadratic.f(quadratic.x_star) == quadratic.f_star == 0.0
    x = np.arange(6.0)
    np.testing.assert_allclose(fd.gradient(quadratic.f, x, "complex"), quadratic.gradient(x), rtol=1e-13)
    np.testing.assert_array_equal(zo.quadratic_problem(6, seed=2).x_star, zo.quadratic_problem(6, seed=2).x_star)


# --- bad input ----------------------------------------------------------------


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="unknown distribution 'uniform'; choose one of sphere, gaussian"):
        zo.random_directions(3, 2, "uniform")
    with pytest.raises(ValueError, match="unknown distribution"):
        zo.direction_scale("ball", 3)
    with pytest.raises(ValueError, match="unknown scheme 'backward'; choose one of central, forward"):
        zo.two_point_estimate(np.sum, np.ones(2), np.ones(2), TAU, scheme="backward")
    with pytest.raises(ValueError, match="unknown scheme"):
        zo.two_point_oracle(scheme="complex")


def test_direction_shape_must_match_x():
    with pytest.raises(ValueError, match=r"direction must have shape x.shape = \(2,\) or \(m,\) \+ x.shape.*got \(3,\)"):
        zo.two_point_estimate(np.sum, np.ones(2), np.ones(3), TAU)
    with pytest.raises(ValueError, match=r"got \(0, 2\)"):
        zo.two_point_estimate(np.sum, np.ones(2), np.ones((0, 2)), TAU)


def test_counts_and_steps_are_checked():
    with pytest.raises(ValueError, match="num_directions must be an integer >= 1, got 0"):
        zo.zero_order_gradient(np.sum, np.ones(2), num_directions=0)
    with pytest.raises(ValueError, match="dim must be an integer >= 1"):
        zo.random_directions(3, 0)
    with pytest.raises(ValueError, match="step must be positive and finite"):
        zo.two_point_oracle(step=0.0)
    with pytest.raises(ValueError, match="step must be positive and finite"):
        zo.zero_order_gradient(np.sum, np.ones(2), step=-1e-3)
    with pytest.raises(ValueError, match="need 0 <= mu <= L"):
        zo.quadratic_problem(3, mu=2.0, L=1.0)
    with pytest.raises(ValueError, match=r"x must have shape \(3,\), got \(2,\)"):
        zo.quadratic_problem(3, seed=0).f(np.ones(2))


def test_driver_inputs_are_checked():
    quadratic, x0, _ = problem(dim=3)
    oracle = zo.exact_oracle(quadratic.gradient)
    with pytest.raises(ValueError, match="needs both f_star and tolerance"):
        zo.gradient_descent(quadratic.f, x0, oracle, 0.1, 5, tolerance=1e-3)
    with pytest.raises(ValueError, match="tolerance must be a finite number >= 0"):
        zo.gradient_descent(quadratic.f, x0, oracle, 0.1, 5, f_star=0.0, tolerance=-1.0)
    with pytest.raises(ValueError, match="step size at iteration 2 must be a positive finite number"):
        zo.gradient_descent(quadratic.f, x0, oracle, lambda k: 0.1 - 0.05 * k, 5)
    with pytest.raises(TypeError, match="step_size must be a number or a function"):
        zo.gradient_descent(quadratic.f, x0, oracle, "0.1", 5)
    with pytest.raises(ValueError, match="num_iters must be an integer >= 0"):
        zo.gradient_descent(quadratic.f, x0, oracle, 0.1, 2.5)
    with pytest.raises(ValueError, match=r"the oracle returned shape \(2,\) at iteration 0, but x has shape \(3,\)"):
        zo.gradient_descent(quadratic.f, x0, lambda f, x, rng: np.ones(2), 0.1, 5)
    with pytest.raises(ValueError, match="non-finite or non-real gradient at iteration 0"):
        zo.gradient_descent(quadratic.f, x0, lambda f, x, rng: np.full(3, np.nan), 0.1, 5)
    with pytest.raises(ValueError, match="must return a real scalar"):
        zo.gradient_descent(lambda x: x, x0, oracle, 0.1, 5)


def test_divergence_is_reported_not_returned():
    f = lambda x: np.exp(np.sum(x))  # noqa: E731
    with pytest.raises(ValueError, match=r"f\(x_\d+\) = inf is not finite: the iterates diverged"):
        with np.errstate(over="ignore"):
            zo.gradient_descent(f, np.zeros(2), lambda f, x, rng: -np.ones(2), 100.0, 10)
