"""coursekit.fd against JAX, against the theory of its error, and against bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

from coursekit import fd

pytestmark = pytest.mark.usefixtures("loud_floating_point_errors")

EPS = np.finfo(np.float64).eps

# Smooth test functions, written once for numpy (what fd differentiates, real or
# complex) and jax.numpy (the oracle). All are analytic, so the complex step applies.


def wavy(x, xp):
    return xp.sum(xp.sin(x) * x**2) + xp.exp(xp.mean(x))


def log_norm(x, xp):
    return xp.log(1 + xp.sum(x**2))


def weighted_tanh(x, xp):
    weights = xp.linspace(0.5, 1.5, x.size).reshape(x.shape)
    return xp.sum(xp.tanh(weights * x))


def waves(x, xp):
    return xp.stack([xp.sin(x) * xp.sum(x), xp.cos(x) ** 2])


def pairwise_exp(x, xp):
    v = x.reshape(-1)
    return xp.exp(v[:, None] * v[None, :] / v.size)


SCALAR_FUNCTIONS = [wavy, log_norm, weighted_tanh]
VECTOR_FUNCTIONS = [waves, pairwise_exp, wavy]

# With the default step, the error of a difference is
#   forward/backward: h |f''| / 2 + 2 eps |f| / h     with h = eps^(1/2) max(1, |x|)  ->  ~ eps^(1/2)
#   central:          h^2 |f'''| / 6 + eps |f| / h    with h = eps^(1/3) max(1, |x|)  ->  ~ eps^(2/3)
#   complex step:     h^2 |f'''| / 6 + eps |f'|       with h = eps^(1/2) max(1, |x|)  ->  ~ eps
# times the size of f and its derivatives. The tolerance is that order times 10
# times max(1, |f|, |exact|): the test functions' higher derivatives on [-1, 1]^27
# are of the size of f and its gradient (worst case measured over 300 random
# points: a third of this tolerance for the complex step, a fifth for the others).
ERROR_ORDER = {"forward": EPS ** (1 / 2), "backward": EPS ** (1 / 2), "central": EPS ** (2 / 3), "complex": EPS}


def tolerance(method, *magnitudes):
    return 10 * ERROR_ORDER[method] * max(1.0, *(float(np.max(np.abs(m))) for m in magnitudes))


def random_point(shape, seed):
    return np.random.default_rng(seed).uniform(-1, 1, shape)


shapes = array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3)
seeds = st.integers(0, 2**32 - 1)


# The oracles are jitted once per function (and compiled once per shape), so
# that hypothesis examples do not pay for JAX's op-by-op dispatch.
JAX_GRADIENT = {f: jax.jit(jax.grad(lambda y, f=f: f(y, jnp))) for f in SCALAR_FUNCTIONS}
JAX_JACOBIAN = {f: jax.jit(jax.jacfwd(lambda y, f=f: f(y, jnp))) for f in VECTOR_FUNCTIONS}


@pytest.mark.parametrize("differentiate, oracles", [(fd.gradient, JAX_GRADIENT), (fd.jacobian, JAX_JACOBIAN)])
@given(data=st.data(), shape=shapes, seed=seeds)
def test_derivatives_match_jax(differentiate, oracles, data, shape, seed):
    function = data.draw(st.sampled_from(list(oracles)), label="function")
    x = random_point(shape, seed)
    exact = np.asarray(oracles[function](x))
    for method in fd.METHODS:
        estimate = differentiate(lambda y: function(y, np), x, method)
        assert estimate.shape == np.shape(function(x, np)) + x.shape
        np.testing.assert_allclose(estimate, exact, rtol=0, atol=tolerance(method, function(x, np), exact))


@pytest.mark.parametrize("method", fd.METHODS)
def test_directional_derivative_matches_jvp_whatever_the_length_of_v(method):
    x, v = random_point((2, 3), 1), random_point((2, 3), 2)
    _, exact = jax.jvp(lambda y: wavy(y, jnp), (x,), (v,))
    for length in (1e-6, 1.0, 1e6):
        # the default step shrinks with |v|, so the result scales exactly like v
        estimate = fd.directional_derivative(lambda y: wavy(y, np), x, length * v, method)
        assert isinstance(estimate, float)
        assert abs(estimate - length * float(exact)) <= length * tolerance(method, wavy(x, np), exact)


@pytest.mark.parametrize("method", fd.METHODS)
def test_directional_derivatives_are_the_gradient_along_each_direction(method):
    x, directions = random_point(4, 3), random_point((5, 4), 4)
    gradient = np.asarray(jax.grad(lambda y: log_norm(y, jnp))(x))
    slopes = fd.directional_derivatives(lambda y: log_norm(y, np), x, directions, method)
    np.testing.assert_allclose(slopes, directions @ gradient, rtol=0, atol=tolerance(method, log_norm(x, np), gradient))


# --- order of accuracy --------------------------------------------------------

X0 = np.array([0.7, -0.3, 1.1])


def sin_exp(x):
    return np.sum(np.sin(x) * np.exp(x))


def sin_exp_gradient(x):
    return np.exp(x) * (np.sin(x) + np.cos(x))


# Steps on the truncation-dominated branch: there round-off (eps |f| / h <= 1e-10)
# is far below truncation (>= 1e-7 for forward/backward, >= 1e-6 for central and complex).
TRUNCATION_STEPS = {
    "forward": np.logspace(-2, -5, 7),
    "backward": np.logspace(-2, -5, 7),
    "central": np.logspace(-1, -2.5, 7),
    "complex": np.logspace(-1, -2.5, 7),
}
ORDER = {"forward": 1, "backward": 1, "central": 2, "complex": 2}


@pytest.mark.parametrize("method", fd.METHODS)
def test_observed_order_of_accuracy(method):
    steps = TRUNCATION_STEPS[method]
    errors = fd.step_error_curve(sin_exp, X0, sin_exp_gradient(X0), steps, method)
    assert fd.observed_order(steps, errors) == pytest.approx(ORDER[method], abs=0.15)


def test_central_error_is_v_shaped_with_the_minimum_near_the_cube_root_of_eps():
    steps = np.logspace(-1, -14, 27)
    errors = fd.step_error_curve(sin_exp, X0, sin_exp_gradient(X0), steps, "central")
    best = int(np.argmin(errors))
    assert 1e-7 <= steps[best] <= 1e-3
    # both arms rise by orders of magnitude: truncation on the left, round-off on the right
    assert errors[0] > 1e3 * errors[best] and errors[-1] > 1e3 * errors[best]


def test_complex_step_is_exact_to_round_off_where_real_differences_break_down():
    exact = sin_exp_gradient(X0)
    for step in (1e-8, 1e-20, 1e-100):
        relative = np.abs(fd.gradient(sin_exp, X0, "complex", step=step) - exact) / np.abs(exact)
        assert np.max(relative) <= 4 * EPS
    for method in ("forward", "backward", "central"):
        # at h = 1e-13 the subtraction f(x + h) - f(x) keeps only ~3 significant digits
        relative = np.abs(fd.gradient(sin_exp, X0, method, step=1e-13) - exact) / np.abs(exact)
        assert np.max(relative) > 1e-4
        with pytest.raises(ValueError, match="too small"):
            fd.gradient(sin_exp, X0, method, step=1e-20)


def test_observed_order_recovers_a_known_power_law():
    steps = np.logspace(-1, -4, 5)
    assert fd.observed_order(steps, 3 * steps**1.5) == pytest.approx(1.5, abs=1e-12)


# --- steps --------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_default_step_formula(dtype):
    x = np.array([0.0, 0.5, -3.0, 1e4], dtype=dtype)
    eps = np.finfo(dtype).eps
    for method, constant in [("forward", eps**0.5), ("backward", eps**0.5), ("complex", eps**0.5), ("central", eps ** (1 / 3))]:
        step = fd.default_step(x, method)
        assert step.dtype == dtype
        np.testing.assert_allclose(step, constant * np.array([1, 1, 3, 1e4]), rtol=4 * eps)
        assert fd.optimal_step(method, dtype) == pytest.approx(constant, rel=1e-12)


def test_default_step_of_integers_uses_float64():
    np.testing.assert_allclose(fd.default_step([0, 2], "central"), EPS ** (1 / 3) * np.array([1.0, 2.0]), rtol=1e-15)


def test_no_step_means_the_default_step():
    x = random_point((2, 2), 5)
    for method in fd.METHODS:
        implicit = fd.gradient(lambda y: wavy(y, np), x, method)
        explicit = fd.gradient(lambda y: wavy(y, np), x, method, step=fd.default_step(x, method))
        np.testing.assert_array_equal(implicit, explicit)


@pytest.mark.parametrize("method", ["forward", "backward", "central"])
def test_the_step_taken_is_the_step_divided_by(method):
    # x + h is not representable; without h <- (x + h) - x the slope of the
    # identity would come out as (x + h - x) / h != 1 in the last few digits.
    x, h = 0.1, np.pi * 1e-7
    assert (x + h) - x != h
    assert fd.gradient(lambda y: 1.0 * y, x, method, step=h) == 1.0


def test_a_step_array_gives_each_coordinate_its_own_step():
    x, steps = random_point(3, 6), np.array([1e-2, 1e-4, 1e-6])
    together = fd.gradient(lambda y: wavy(y, np), x, "forward", step=steps)
    for k in range(3):
        alone = fd.gradient(lambda y: wavy(y, np), x, "forward", step=steps[k])
        assert together[k] == alone[k]


# --- cost ---------------------------------------------------------------------


def counting(function):
    calls = []

    def counted(x):
        calls.append(1)
        return function(x)

    return counted, calls


@pytest.mark.parametrize("method", fd.METHODS)
@pytest.mark.parametrize("shape", [(), (1,), (4,), (2, 3)])
def test_evaluations_counts_the_calls_of_f(method, shape):
    f, calls = counting(lambda y: wavy(y, np))
    fd.gradient(f, random_point(shape, 7), method)
    assert len(calls) == fd.evaluations(method, int(np.prod(shape)))


def test_evaluation_counts_by_formula():
    assert [fd.evaluations(m, 10) for m in fd.METHODS] == [11, 11, 20, 10]


@pytest.mark.parametrize("method, expected", [("forward", 6), ("backward", 6), ("central", 10), ("complex", 5)])
def test_directional_derivatives_share_f_at_x(method, expected):
    f, calls = counting(lambda y: wavy(y, np))
    fd.directional_derivatives(f, random_point(3, 8), random_point((5, 3), 9), method)
    assert len(calls) == expected


# --- bad input ----------------------------------------------------------------


def test_f_must_return_a_finite_scalar():
    with pytest.raises(ValueError, match=r"non-finite value nan at x = \[0\.49"):
        fd.gradient(lambda y: np.nan * np.sum(y), [0.5, 1.0])
    with pytest.raises(ValueError, match=r"must return a scalar, got shape \(1,\); use jacobian"):
        fd.gradient(lambda y: y[:1], [0.5, 1.0])
    with pytest.raises(ValueError, match=r"must return a scalar, got shape \(2,\)"):
        fd.directional_derivative(lambda y: y, [0.5, 1.0], [1.0, 0.0])
    with pytest.raises(TypeError, match="must return numbers"):
        fd.gradient(lambda y: "one", 1.0)
    with pytest.raises(TypeError, match="real-valued f"):
        fd.gradient(lambda y: y + 1j, 1.0, "central")


def test_jacobian_refuses_outputs_that_change_shape():
    with pytest.raises(ValueError, match=r"f returned shape \(\d,\) .* but \(\d,\) before"):
        fd.jacobian(lambda y: np.ones(2 if y[0] > 0.5 else 3), [0.5, 1.0])


def test_complex_step_needs_a_complex_safe_f():
    for unsafe in (np.abs, lambda y: np.real(y) ** 2, lambda y: float(np.real(y))):
        with pytest.raises(TypeError, match="complex-safe"):
            fd.gradient(unsafe, 0.5, "complex")


@pytest.mark.parametrize("step", [0.0, -1e-3, np.nan, np.inf, [1e-3, -1e-3]])
def test_step_must_be_positive_and_finite(step):
    with pytest.raises(ValueError, match="step must be positive and finite"):
        fd.gradient(np.sum, [0.5, 1.0], step=step)


def test_step_must_broadcast_to_x():
    with pytest.raises(ValueError, match=r"step of shape \(3,\) does not broadcast to shape \(2,\)"):
        fd.gradient(np.sum, [0.5, 1.0], step=[1e-3, 1e-3, 1e-3])
    with pytest.raises(ValueError, match="underflows to 0 in float32"):
        fd.gradient(np.sum, np.ones(2, np.float32), step=1e-50)


def test_unknown_method_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown method 'centered'; choose one of forward, backward, central, complex"):
        fd.gradient(np.sum, [1.0], method="centered")
    with pytest.raises(ValueError, match="unknown method"):
        fd.evaluations("five-point", 3)


def test_x_must_be_real_floating_and_finite():
    with pytest.raises(TypeError, match="x must be real, got complex"):
        fd.gradient(np.sum, np.array([1.0 + 1j]))
    with pytest.raises(TypeError, match="x must be an array of real numbers"):
        fd.gradient(np.sum, ["a"])
    with pytest.raises(TypeError, match="x must be an array of real numbers"):
        fd.gradient(np.sum, [True, False])
    with pytest.raises(ValueError, match="x must be finite"):
        fd.gradient(np.sum, [1.0, np.inf])
    with pytest.raises(ValueError, match="no coordinates"):
        fd.gradient(np.sum, np.zeros(0))


def test_direction_shapes_must_match_x():
    with pytest.raises(ValueError, match=r"direction v has shape \(3,\), but x has shape \(2,\)"):
        fd.directional_derivative(np.sum, [0.5, 1.0], [1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match=r"directions must have shape \(m,\) \+ x.shape = \(m, 2\), got \(2, 3\)"):
        fd.directional_derivatives(np.sum, [0.5, 1.0], np.ones((2, 3)))
    with pytest.raises(ValueError, match="directions is empty"):
        fd.directional_derivatives(np.sum, [0.5, 1.0], np.ones((0, 2)))


def test_a_step_below_the_resolution_of_x_is_refused():
    with pytest.raises(ValueError, match=r"step 1e-10 is too small for x\[1\] = 1e\+10"):
        fd.gradient(np.sum, [1.0, 1e10], "forward", step=1e-10)
    with pytest.raises(ValueError, match="too small"):
        fd.directional_derivative(np.sum, [1e10], [1.0], "central", step=1e-10)


def test_curve_and_order_inputs_are_checked():
    with pytest.raises(ValueError, match=r"exact_gradient has shape \(3,\), but x has shape \(2,\)"):
        fd.step_error_curve(np.sum, [0.5, 1.0], np.ones(3), [1e-3])
    with pytest.raises(ValueError, match="non-empty 1-d"):
        fd.step_error_curve(np.sum, [0.5, 1.0], np.ones(2), [])
    with pytest.raises(ValueError, match="equal length >= 2"):
        fd.observed_order([1e-1, 1e-2], [1e-3])
    with pytest.raises(ValueError, match="positive and finite to take logarithms"):
        fd.observed_order([1e-1, 1e-2], [1e-3, 0.0])
    with pytest.raises(ValueError, match="dim must be a positive integer"):
        fd.evaluations("central", 0)
