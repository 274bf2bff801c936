r"""Zero-order gradient estimators and a gradient-descent driver that counts calls.

A two-point estimator looks at :math:`f` along a random direction :math:`u`:

.. math::

    G = s \, \frac{f(x + \tau u) - f(x - \tau u)}{2\tau} \, u
    \quad\text{(central)}, \qquad
    G = s \, \frac{f(x + \tau u) - f(x)}{\tau} \, u \quad\text{(forward)}.

Since :math:`\mathbb E[G] \approx s\,\mathbb E[u u^\top] \nabla f(x)`, the scale
:math:`s` must undo :math:`\mathbb E[u u^\top]`:

- ``"sphere"``: :math:`u` uniform on the unit sphere, :math:`\mathbb E[u u^\top] = I/d`,
  so :math:`s = d` (Flaxman, Kalai & McMahan 2005; Duchi et al. 2015);
- ``"gaussian"``: :math:`u \sim \mathcal N(0, I)`, :math:`\mathbb E[u u^\top] = I`,
  so :math:`s = 1` (Nesterov & Spokoiny 2017). The factor :math:`d` is right
  ONLY for the sphere.

For a quadratic with gradient :math:`g` at :math:`x`, the central scheme is
exact along the line and :math:`\mathbb E[G] = g` for both. Its spread:

- sphere: :math:`\mathbb E\|G\|^2 = d\|g\|^2`, :math:`\mathbb E\|G - g\|^2 = (d - 1)\|g\|^2`
  (from :math:`\mathbb E (g^\top u)^2 = \|g\|^2 / d` and :math:`\|u\| = 1`);
- gaussian: :math:`\mathbb E\|G\|^2 = (d + 2)\|g\|^2`, :math:`\mathbb E\|G - g\|^2 = (d + 1)\|g\|^2`
  (from :math:`\mathbb E[u_1^4] = 3`).

This variance is the price of zero order: gradient descent with :math:`G` needs
a step about :math:`d` times smaller and about :math:`d` times more iterations.
For an :math:`L`-smooth :math:`f`, Nesterov & Spokoiny take the Gaussian step
:math:`1/(4(n + 4)L)`; for sphere directions on a quadratic,
:math:`\mathbb E f(x - \alpha G) \le f(x) - \alpha\|g\|^2 + \alpha^2 d L \|g\|^2 / 2`,
best at :math:`\alpha = 1/(dL)`, which guarantees a decrease of
:math:`\|g\|^2 / (2dL)`: :math:`d` times less than gradient descent's
:math:`\|g\|^2 / (2L)`. Up to constants the rates are those of gradient
descent with :math:`k` replaced by :math:`k/n`: :math:`O(n/k)` for smooth
(in :math:`\min \|\nabla f\|^2`) and convex (in :math:`f - f^*`) problems,
:math:`(1 - \mu/(nL))^k` for strongly convex ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from coursekit import fd
from coursekit._checks import check_choice, check_count

DISTRIBUTIONS = ("sphere", "gaussian")
SCHEMES = ("central", "forward")

Seed = int | np.random.Generator | None
Function = Callable[[np.ndarray], float]
Oracle = Callable[[Function, np.ndarray, np.random.Generator], np.ndarray]


def random_directions(num: int, dim: int, distribution: str = "sphere", seed: Seed = None) -> np.ndarray:
    r"""``num`` random directions in :math:`\mathbb R^{dim}`, shape ``(num, dim)``.

    ``"gaussian"``: :math:`u \sim \mathcal N(0, I)`. ``"sphere"``: uniform on the
    unit sphere, drawn as :math:`z / \|z\|` with :math:`z \sim \mathcal N(0, I)`
    (the Gaussian is rotation invariant, so its direction is uniform; Muller 1959).
    ``seed`` is an int, ``None`` or a ``np.random.Generator`` (which is advanced).
    """
    check_choice("distribution", distribution, DISTRIBUTIONS)
    check_count("num", num, minimum=0)
    check_count("dim", dim, minimum=1)
    directions = np.random.default_rng(seed).standard_normal((num, dim))
    if distribution == "sphere":
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return directions


def direction_scale(distribution: str, dim: int) -> float:
    r"""The factor :math:`s` with :math:`s\,\mathbb E[u u^\top] = I`: ``dim`` for the sphere, 1 for the Gaussian."""
    check_choice("distribution", distribution, DISTRIBUTIONS)
    check_count("dim", dim, minimum=1)
    return float(dim) if distribution == "sphere" else 1.0


def two_point_estimate(
    f: Function,
    x: npt.ArrayLike,
    direction: npt.ArrayLike,
    step: float,
    scale: float = 1.0,
    scheme: str = "central",
) -> np.ndarray:
    r"""The two-point estimate along given directions, averaged over them.

    central: :math:`s \frac{f(x + \tau u) - f(x - \tau u)}{2\tau} u`; forward:
    :math:`s \frac{f(x + \tau u) - f(x)}{\tau} u`, with :math:`\tau` = ``step``
    and :math:`s` = ``scale`` (see :func:`direction_scale`). ``direction`` has
    shape ``x.shape`` (one direction) or ``(m,) + x.shape`` (the mean of
    :math:`m` estimates is returned). Deterministic: the randomness is in the
    directions. Costs :math:`2m` calls of ``f`` (central) or :math:`m + 1`
    (forward, sharing :math:`f(x)`). Returns an array of the shape of ``x``.

    References: Nesterov & Spokoiny (2017); Duchi, Jordan, Wainwright &
    Wibisono (2015).
    """
    x = fd._real_point(x)
    directions = fd._real_point(direction, name="direction")
    if directions.shape == x.shape:
        directions = directions[np.newaxis]
    elif directions.shape[1:] != x.shape or directions.shape[0] == 0:
        raise ValueError(
            f"direction must have shape x.shape = {x.shape} or (m,) + x.shape with m >= 1, "
            f"got {directions.shape}"
        )
    check_choice("scheme", scheme, SCHEMES)
    if not np.isfinite(scale):
        raise ValueError(f"scale must be finite, got {scale}")
    slopes = fd.directional_derivatives(f, x, directions, method=scheme, step=step)
    return scale * np.tensordot(slopes, directions, axes=1) / len(directions)


def zero_order_gradient(
    f: Function,
    x: npt.ArrayLike,
    *,
    step: float = 1e-4,
    num_directions: int = 1,
    distribution: str = "sphere",
    scheme: str = "central",
    seed: Seed = None,
) -> np.ndarray:
    r"""Random-direction gradient estimate: :func:`two_point_estimate` on fresh directions.

    Draws ``num_directions`` directions of ``distribution`` and scales by
    :func:`direction_scale`, so the estimate is unbiased for quadratics. In
    general its mean is the gradient of a smoothed :math:`f`:

    - ``"gaussian"`` with ``scheme="forward"`` is the estimator of Nesterov &
      Spokoiny (2017); its mean is :math:`\nabla f_\tau(x)` for the Gaussian
      smoothing :math:`f_\tau(x) = \mathbb E_{u \sim \mathcal N(0, I)} f(x + \tau u)`,
      which equals :math:`\nabla f(x)` for quadratics;
    - ``"sphere"`` with factor :math:`d` is the estimator of Flaxman, Kalai &
      McMahan (2005) and Duchi et al. (2015); its mean is the gradient of the
      ball smoothing :math:`\mathbb E_{v \sim \text{unit ball}} f(x + \tau v)`.
    """
    x = fd._real_point(x)
    check_count("num_directions", num_directions, minimum=1)
    directions = random_directions(num_directions, x.size, distribution, seed)
    scale = direction_scale(distribution, x.size)
    return two_point_estimate(f, x, directions.reshape((num_directions,) + x.shape), step, scale, scheme)


def coordinate_estimate(f: Function, x: npt.ArrayLike, step: float = 1e-4) -> np.ndarray:
    r"""Coordinate-wise estimate :math:`\sum_i \frac{f(x + \tau e_i) - f(x - \tau e_i)}{2\tau} e_i`.

    The central finite-difference gradient (:func:`coursekit.fd.gradient` with
    absolute step ``step``): deterministic, :math:`2d` calls of ``f``.
    """
    return fd.gradient(f, x, "central", step=step)


# --- oracles: oracle(f, x, rng) -> gradient estimate --------------------------


def exact_oracle(grad_f: Callable[[np.ndarray], npt.ArrayLike]) -> Oracle:
    """The true gradient as an oracle; ignores ``f`` and ``rng``.

    The oracle carries ``gradient_calls()``, the number of calls of ``grad_f``
    so far, which :func:`gradient_descent` reads to fill ``gradient_evals``.
    An oracle of your own that calls a true gradient can carry the same.
    """
    calls = 0

    def oracle(f, x, rng):
        nonlocal calls
        calls += 1
        return grad_f(x)

    oracle.gradient_calls = lambda: calls
    return oracle


def two_point_oracle(
    step: float = 1e-4, num_directions: int = 1, distribution: str = "sphere", scheme: str = "central"
) -> Oracle:
    """:func:`zero_order_gradient` with these settings as an oracle, drawing directions from ``rng``."""
    fd._positive_step(step, (), np.float64)
    check_count("num_directions", num_directions, minimum=1)
    check_choice("distribution", distribution, DISTRIBUTIONS)
    check_choice("scheme", scheme, SCHEMES)

    def oracle(f, x, rng):
        return zero_order_gradient(
            f, x, step=step, num_directions=num_directions, distribution=distribution, scheme=scheme, seed=rng
        )

    return oracle


def coordinate_oracle(step: float = 1e-4) -> Oracle:
    """:func:`coordinate_estimate` with this step as an oracle (``2d`` calls of ``f``)."""
    fd._positive_step(step, (), np.float64)
    return lambda f, x, rng: coordinate_estimate(f, x, step)


# --- the driver ---------------------------------------------------------------


class History(NamedTuple):
    r"""What :func:`gradient_descent` did, iteration by iteration (k = 0..K).

    ``values[k]`` is :math:`f(x_k)`; ``function_evals[k]`` and
    ``gradient_evals[k]`` count the calls of ``f`` and of the true gradient made
    by the oracle in the first ``k`` iterations (evaluating :math:`f(x_k)` for
    monitoring is not counted); ``iterations`` is :math:`K`; ``points`` is
    :math:`(x_0, \dots, x_K)` stacked, or ``None`` unless asked for.
    """

    x: np.ndarray
    values: np.ndarray
    function_evals: np.ndarray
    gradient_evals: np.ndarray
    iterations: int
    points: np.ndarray | None = None


def gradient_descent(
    f: Function,
    x0: npt.ArrayLike,
    oracle: Oracle,
    step_size: float | Callable[[int], float],
    num_iters: int,
    *,
    f_star: float | None = None,
    tolerance: float | None = None,
    seed: Seed = None,
    progress: bool = False,
    record_points: bool = False,
) -> History:
    r"""Gradient descent :math:`x_{k+1} = x_k - \alpha_k g_k` with :math:`g_k` = ``oracle(f, x_k, rng)``.

    One driver for every oracle (:func:`exact_oracle`, :func:`two_point_oracle`,
    :func:`coordinate_oracle`, or your own), so that plain and zero-order
    descent are compared on equal terms, by iterations or by calls. The oracle
    receives ``f`` wrapped in a counter and one ``np.random.Generator`` made
    from ``seed`` for the whole run.

    ``step_size`` is a constant :math:`\alpha` or a function ``k -> alpha_k``.
    Runs ``num_iters`` iterations, or stops at the first :math:`k` with
    :math:`f(x_k) - f^* \le` ``tolerance`` when ``f_star`` and ``tolerance``
    are both given. ``progress=True`` shows a tqdm bar; ``record_points=True``
    keeps every iterate in ``History.points`` (for animations).
    """
    x = fd._real_point(x0, name="x0").astype(np.float64)
    check_count("num_iters", num_iters, minimum=0)
    alpha = _schedule(step_size)
    reached = _stopping_rule(f_star, tolerance)
    rng = np.random.default_rng(seed)
    counted_f, f_calls = _counting(f)
    gradient_calls = getattr(oracle, "gradient_calls", lambda: 0)
    gradient_calls_before = gradient_calls()

    values = [_monitor(f, x, 0)]
    function_evals, gradient_evals, points = [0], [0], [x]
    iterations = 0
    for k in tqdm(range(num_iters), disable=not progress, desc="gradient descent"):
        if reached(values[-1]):
            break
        x = x - alpha(k) * _checked_estimate(oracle(counted_f, x, rng), x, k)
        iterations = k + 1
        values.append(_monitor(f, x, iterations))
        function_evals.append(f_calls())
        gradient_evals.append(gradient_calls() - gradient_calls_before)
        points.append(x)
    return History(
        x=x,
        values=np.array(values),
        function_evals=np.array(function_evals),
        gradient_evals=np.array(gradient_evals),
        iterations=iterations,
        points=np.stack(points) if record_points else None,
    )


def iterations_to_reach(history: History, f_star: float, tolerance: float) -> int | None:
    r"""The first :math:`k` with :math:`f(x_k) - f^* \le` ``tolerance``, or ``None`` if never."""
    _check_tolerance(tolerance)
    hits = np.flatnonzero(np.asarray(history.values) - f_star <= tolerance)
    return int(hits[0]) if hits.size else None


class Quadratic(NamedTuple):
    r""":math:`f(x) = \frac12 (x - x^*)^\top A (x - x^*) + f^*`, its gradient :math:`A(x - x^*)`, and its data."""

    f: Function
    gradient: Callable[[np.ndarray], np.ndarray]
    x_star: np.ndarray
    f_star: float
    A: np.ndarray


def quadratic_problem(dim: int, mu: float = 1.0, L: float = 10.0, seed: Seed = None) -> Quadratic:
    r"""A random quadratic in :math:`\mathbb R^{dim}` with the eigenvalues of :math:`A` evenly spaced in :math:`[\mu, L]`.

    :math:`A = Q \operatorname{diag}(\lambda) Q^\top` with :math:`Q` a uniformly
    random orthogonal matrix (QR of a Gaussian matrix with the signs fixed;
    Mezzadri 2007), :math:`\lambda_i` = ``linspace(mu, L, dim)``, so
    :math:`f` is :math:`\mu`-strongly convex and :math:`L`-smooth (for
    ``dim = 1`` the one eigenvalue is :math:`\mu`). :math:`x^* \sim \mathcal
    N(0, I)`, :math:`f^* = 0`. ``f`` uses only complex-safe operations, so the
    complex step works on it.
    """
    check_count("dim", dim, minimum=1)
    if not (np.isfinite(mu) and np.isfinite(L) and 0 <= mu <= L and L > 0):
        raise ValueError(f"need 0 <= mu <= L with L > 0, both finite; got mu={mu}, L={L}")
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    q *= np.where(np.diag(r) < 0, -1.0, 1.0)
    A = (q * np.linspace(mu, L, dim)) @ q.T
    A = (A + A.T) / 2
    x_star = rng.standard_normal(dim)

    def f(x):
        residual = _vector(x, dim) - x_star
        return 0.5 * residual @ A @ residual

    def gradient(x):
        return A @ (_vector(x, dim) - x_star)

    return Quadratic(f=f, gradient=gradient, x_star=x_star, f_star=0.0, A=A)


# --- small helpers ------------------------------------------------------------


def _counting(function):
    """``function`` wrapped to count its calls, and a way to read the count."""
    calls = 0

    def counted(*args):
        nonlocal calls
        calls += 1
        return function(*args)

    return counted, lambda: calls


def _schedule(step_size):
    if callable(step_size):
        schedule = step_size
    elif isinstance(step_size, (int, float, np.integer, np.floating)) and not isinstance(step_size, bool):
        schedule = lambda k: step_size  # noqa: E731
    else:
        raise TypeError(f"step_size must be a number or a function k -> alpha_k, got {type(step_size).__name__}")

    def alpha(k):
        value = schedule(k)
        if not (np.ndim(value) == 0 and np.isreal(value) and np.isfinite(value) and value > 0):
            raise ValueError(f"step size at iteration {k} must be a positive finite number, got {value!r}")
        return float(value)

    return alpha


def _stopping_rule(f_star, tolerance):
    if (f_star is None) != (tolerance is None):
        raise ValueError("early stopping needs both f_star and tolerance; give both or neither")
    if f_star is None:
        return lambda value: False
    _check_tolerance(tolerance)
    return lambda value: value - f_star <= tolerance


def _monitor(f, x, k):
    value = np.asarray(f(x))
    if value.shape != () or value.dtype.kind not in "iuf":
        raise ValueError(f"f must return a real scalar, got {value!r} (shape {value.shape}) at iteration {k}")
    if not np.isfinite(value):
        raise ValueError(f"f(x_{k}) = {value} is not finite: the iterates diverged; try a smaller step size")
    return float(value)


def _checked_estimate(estimate, x, k):
    estimate = np.asarray(estimate)
    if estimate.shape != x.shape:
        raise ValueError(f"the oracle returned shape {estimate.shape} at iteration {k}, but x has shape {x.shape}")
    if estimate.dtype.kind not in "iuf" or not np.all(np.isfinite(estimate)):
        raise ValueError(f"the oracle returned a non-finite or non-real gradient at iteration {k}: {estimate}")
    return estimate


def _vector(x, dim):
    x = np.asarray(x)
    if x.shape != (dim,):
        raise ValueError(f"x must have shape ({dim},), got {x.shape}")
    return x





def _check_tolerance(tolerance):
    if not (np.isreal(tolerance) and np.isfinite(tolerance) and tolerance >= 0):
        raise ValueError(f"tolerance must be a finite number >= 0, got {tolerance!r}")
