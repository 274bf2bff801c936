r"""Finite differences: derivatives from function values alone.

Every formula here differentiates the line :math:`t \mapsto f(x + t u)` at
:math:`t = 0` from a few values of :math:`f`:

.. math::

    \text{forward:}\quad  \frac{f(x + h u) - f(x)}{h}, \qquad
    \text{backward:}\quad \frac{f(x) - f(x - h u)}{h},

    \text{central:}\quad  \frac{f(x + h u) - f(x - h u)}{2h}, \qquad
    \text{complex step:}\quad \frac{\operatorname{Im} f(x + i h u)}{h}.

The gradient takes :math:`u = e_k` for every coordinate :math:`k`. Forward and
backward differences have truncation error :math:`O(h)`, central and complex
step :math:`O(h^2)`; the real differences also lose about
:math:`\varepsilon |f| / h` to round-off, so their error is V-shaped in
:math:`h`. The complex step subtracts nothing and has no round-off floor.

References: Nocedal & Wright, *Numerical Optimization*, 2nd ed., §8.1;
Press et al., *Numerical Recipes*, 3rd ed., §5.7; Squire & Trapp (1998);
Martins, Sturdza & Alonso (2003).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from coursekit._checks import check_choice

METHODS = ("forward", "backward", "central", "complex")

# The step that balances truncation against round-off is eps**(1/2) for the
# first-order real differences and eps**(1/3) for the central one. The complex
# step has no round-off trade-off; eps**(1/2) already makes its O(h^2)
# truncation error smaller than eps.
_EPSILON_POWER = {"forward": 1 / 2, "backward": 1 / 2, "central": 1 / 3, "complex": 1 / 2}

# Where the two evaluated points sit on the line x + t h u, in units of h.
_STENCILS = {"forward": (0, 1), "backward": (-1, 0), "central": (-1, 1)}


def optimal_step(method: str = "central", dtype: npt.DTypeLike = np.float64) -> float:
    r"""The error-minimising step for a unit-sized ``x``: :math:`\varepsilon^{1/2}` or :math:`\varepsilon^{1/3}`.

    Forward/backward: error :math:`\approx h|f''|/2 + \varepsilon|f|/h`, minimised
    at :math:`h \sim \sqrt{\varepsilon}`. Central: error :math:`\approx
    h^2|f'''|/6 + \varepsilon|f|/h`, minimised at :math:`h \sim
    \varepsilon^{1/3}`. Complex step: no subtraction, so no round-off term;
    any :math:`h \le \sqrt{\varepsilon}` is as good as any smaller one, and
    :math:`\sqrt{\varepsilon}` is returned. :math:`\varepsilon` is the machine
    epsilon of ``dtype`` (float64 for integer dtypes).

    Reference: Nocedal & Wright, *Numerical Optimization*, 2nd ed., §8.1.
    """
    check_choice("method", method, METHODS)
    return float(np.finfo(_floating(dtype)).eps ** _EPSILON_POWER[method])


def default_step(x: npt.ArrayLike, method: str = "central") -> np.ndarray:
    r"""Per-coordinate absolute step :math:`h_i = c \max(1, |x_i|)`.

    :math:`c = \sqrt{\varepsilon}` for forward, backward and complex step,
    :math:`c = \sqrt[3]{\varepsilon}` for central (see :func:`optimal_step`),
    with :math:`\varepsilon` the machine epsilon of ``x``'s floating dtype
    (float64 if ``x`` holds integers). The factor :math:`\max(1, |x_i|)` keeps
    the step relative for large coordinates and absolute near zero.

    References: Nocedal & Wright, *Numerical Optimization*, 2nd ed., §8.1;
    Press et al., *Numerical Recipes*, 3rd ed., §5.7.
    """
    x = _real_point(x)
    return optimal_step(method, x.dtype) * np.maximum(1, np.abs(x))


def directional_derivative(
    f: Callable[[np.ndarray], float],
    x: npt.ArrayLike,
    v: npt.ArrayLike,
    method: str = "central",
    step: float | None = None,
) -> float:
    r"""Derivative of :math:`t \mapsto f(x + t v)` at :math:`t = 0`, i.e. :math:`\nabla f(x)^\top v`.

    Uses the formula of ``method`` (see the module docstring) with one
    absolute step ``step`` in :math:`t`. ``None`` chooses
    :math:`h = c \max(1, \|x\|_\infty) / \|v\|_\infty`, so that the point moves
    by about :func:`default_step` in its largest coordinate. ``f`` must return
    a finite real scalar; ``v`` must have the shape of ``x``. The points
    :math:`x \pm h v` are rounded coordinate by coordinate, a relative error of
    order :math:`\varepsilon` in the step; unlike :func:`gradient`, there is no
    single coordinate whose rounding could be undone.

    Costs 2 evaluations of ``f`` (1 for the complex step).
    """
    x = _real_point(x)
    v = _real_point(v, name="direction v")
    _check_same_shape("direction v", v.shape, "x", x.shape)
    return float(directional_derivatives(f, x, v[np.newaxis], method, step)[0])


def directional_derivatives(
    f: Callable[[np.ndarray], float],
    x: npt.ArrayLike,
    directions: npt.ArrayLike,
    method: str = "central",
    step: float | npt.ArrayLike | None = None,
) -> np.ndarray:
    r"""Slopes :math:`\nabla f(x)^\top u_j` along each of ``directions`` (shape ``(m,) + x.shape``).

    The same formulas as :func:`directional_derivative`, sharing the value
    :math:`f(x)` between directions, so that ``m`` directions cost ``m + 1``
    evaluations (forward/backward), ``2m`` (central) or ``m`` (complex).
    ``step`` is one absolute step in :math:`t`, or one per direction (shape
    ``(m,)``); ``None`` chooses it per direction as in
    :func:`directional_derivative`. Returns an array of shape ``(m,)``.
    """
    x = _real_point(x)
    directions = _real_point(directions, name="directions")
    if directions.ndim != x.ndim + 1 or directions.shape[1:] != x.shape:
        raise ValueError(
            f"directions must have shape (m,) + x.shape = (m, {', '.join(map(str, x.shape))}), "
            f"got {directions.shape}"
        )
    check_choice("method", method, METHODS)
    num_directions = directions.shape[0]
    if num_directions == 0:
        raise ValueError("directions is empty; give at least one direction")
    if step is None:
        largest = np.max(np.abs(directions), axis=tuple(range(1, directions.ndim)), initial=0.0)
        # A zero direction has slope 0 for any step; dividing by 1 keeps h finite.
        largest = np.where(largest > 0, largest, 1.0)
        reach = optimal_step(method, x.dtype) * max(1.0, float(np.max(np.abs(x), initial=0.0)))
        steps = (reach / largest).astype(x.dtype)
    else:
        steps = _positive_step(step, (num_directions,), x.dtype)
    evaluate = _checked(f, method, scalar=True)
    return _slopes(evaluate, x, directions, steps, method)


def gradient(
    f: Callable[[np.ndarray], float],
    x: npt.ArrayLike,
    method: str = "central",
    step: float | npt.ArrayLike | None = None,
) -> np.ndarray:
    r"""Finite-difference gradient of a scalar ``f`` at ``x`` (any shape): :math:`g_k \approx \partial f / \partial x_k`.

    Each coordinate uses the formula of ``method`` along :math:`e_k` (module
    docstring). ``step``: ``None`` for :func:`default_step`; otherwise the
    ABSOLUTE step, a positive float or an array broadcastable to ``x.shape``.

    For the real methods the step is first replaced by :math:`h \leftarrow
    (x + h) - x`: the point :math:`x + h` is rounded to a float anyway, and
    dividing by the distance really travelled instead of the nominal one
    removes an error of order :math:`\varepsilon |x| / h` relative
    (Press et al., *Numerical Recipes*, §5.7). Then :math:`x - h` is exact too
    whenever :math:`h \le 3|x|`, and off by half an ulp of :math:`h` otherwise.

    ``f`` must return a finite real scalar (a Python number or a 0-d array);
    for vector outputs use :func:`jacobian`. For ``method="complex"`` it must
    be written with complex-safe operations (no ``abs``, ``.real``, casts to
    float), see Squire & Trapp (1998) and Martins, Sturdza & Alonso (2003).

    Costs :func:`evaluations` ``(method, x.size)`` calls of ``f``.
    """
    return _coordinate_derivatives(f, x, method, step, scalar=True)


def jacobian(
    f: Callable[[np.ndarray], npt.ArrayLike],
    x: npt.ArrayLike,
    method: str = "central",
    step: float | npt.ArrayLike | None = None,
) -> np.ndarray:
    r"""Finite-difference Jacobian :math:`J_{a k} \approx \partial f_a / \partial x_k`, shape ``f(x).shape + x.shape``.

    The same per-coordinate differences as :func:`gradient` (same ``method``
    and ``step`` rules), applied to every output component at once. ``f`` may
    return any fixed shape; every output must be finite and real (complex for
    ``method="complex"``).
    """
    return _coordinate_derivatives(f, x, method, step, scalar=False)


def evaluations(method: str, dim: int) -> int:
    r"""Calls of ``f`` one :func:`gradient` costs in dimension ``dim``.

    Forward/backward: :math:`d + 1` (the shared :math:`f(x)` plus one per
    coordinate). Central: :math:`2d`. Complex step: :math:`d` (but each call
    is on complex numbers, roughly 2-4 times dearer).

    Note: the course's source slides give :math:`2dT` for the *forward*
    difference; that is the cost of the central one. Forward costs
    :math:`(d + 1) T`, where :math:`T` is the cost of one call of ``f``.
    """
    check_choice("method", method, METHODS)
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
        raise ValueError(f"dim must be a positive integer, got {dim!r}")
    return {"forward": dim + 1, "backward": dim + 1, "central": 2 * dim, "complex": dim}[method]


def step_error_curve(
    f: Callable[[np.ndarray], float],
    x: npt.ArrayLike,
    exact_gradient: npt.ArrayLike,
    steps: npt.ArrayLike,
    method: str = "central",
) -> np.ndarray:
    r"""Absolute error :math:`\max_k |g_k(h) - \nabla_k f(x)|` of :func:`gradient` for each step in ``steps``.

    On a log-log plot the curve is V-shaped for the real methods: truncation
    (:math:`\propto h` or :math:`h^2`) dominates for large :math:`h`, round-off
    (:math:`\propto \varepsilon |f| / h`) for small :math:`h`. The complex step
    has no round-off branch. A step so small that :math:`x + h` rounds back to
    :math:`x` raises ``ValueError`` rather than returning a meaningless error.

    Reference: Nocedal & Wright, *Numerical Optimization*, 2nd ed., §8.1.
    """
    x = _real_point(x)
    exact = _real_point(exact_gradient, name="exact_gradient")
    _check_same_shape("exact_gradient", exact.shape, "x", x.shape)
    steps = _positive_step(steps, None, np.float64)
    if steps.ndim != 1 or steps.size == 0:
        raise ValueError(f"steps must be a non-empty 1-d sequence, got shape {steps.shape}")
    return np.array([np.max(np.abs(gradient(f, x, method, step=h) - exact)) for h in steps])


def observed_order(steps: npt.ArrayLike, errors: npt.ArrayLike) -> float:
    r"""Empirical order of accuracy: least-squares slope :math:`p` in :math:`\log e \approx p \log h + c`.

    Pass only the truncation-dominated branch of a :func:`step_error_curve`
    (large enough steps for round-off to be negligible): there forward and
    backward differences give :math:`p \approx 1`, central and complex step
    :math:`p \approx 2`.
    """
    steps = _positive_step(steps, None, np.float64)
    errors = np.asarray(errors, dtype=np.float64)
    if steps.ndim != 1 or steps.shape != errors.shape or steps.size < 2:
        raise ValueError(
            f"steps and errors must be 1-d of equal length >= 2, got shapes {steps.shape} and {errors.shape}"
        )
    if not np.all(np.isfinite(errors) & (errors > 0)):
        raise ValueError(f"errors must be positive and finite to take logarithms, got {errors}")
    slope, _ = np.polyfit(np.log(steps), np.log(errors), 1)
    return float(slope)


# --- the one place where differences are taken ------------------------------


def _coordinate_derivatives(f, x, method, step, scalar):
    x = _real_point(x)
    check_choice("method", method, METHODS)
    if x.size == 0:
        raise ValueError("x has no coordinates (size 0); there is nothing to differentiate")
    steps = default_step(x, method) if step is None else _positive_step(step, x.shape, x.dtype)
    if method != "complex":
        steps = _representable(x, steps)
    units = (_unit_vector(x, index) for index in np.ndindex(x.shape))
    slopes = _slopes(_checked(f, method, scalar), x, units, steps.ravel(), method)
    # slopes is (coordinate,) + output shape; the Jacobian puts the output first.
    return np.moveaxis(slopes, 0, -1).reshape(slopes.shape[1:] + x.shape)


def _slopes(evaluate, x, directions, steps, method):
    center = evaluate(x) if method in ("forward", "backward") else None
    return np.stack([_slope(evaluate, x, u, h, method, center) for u, h in zip(directions, steps)])


def _slope(evaluate, x, u, h, method, center):
    """The derivative of t -> f(x + t u) at 0 by ``method`` with step h."""
    if method == "complex":
        return evaluate(x + (1j * h) * u).imag / h
    low, high = _STENCILS[method]
    points = {offset: x + (offset * h) * u for offset in (low, high) if offset != 0}
    if np.array_equal(points.get(low, x), points.get(high, x)):
        raise ValueError(
            f"step {h:.3g} is too small for x = {_describe(x)}: x + h u rounds to the same "
            f"point as x - h u, so the difference is 0/0; use a larger step"
        )
    values = {offset: center if offset == 0 else evaluate(points[offset]) for offset in (low, high)}
    return (values[high] - values[low]) / ((high - low) * h)


def _representable(x, steps):
    """The steps really taken, h = (x + h) - x, refusing those that vanish."""
    taken = (x + steps) - x
    if np.any(taken == 0):
        index = tuple(int(i) for i in np.argwhere(taken == 0)[0])
        raise ValueError(
            f"step {steps[index]:.3g} is too small for x{list(index) if index else ''} = {x[index]:.6g}: x + h rounds "
            f"back to x, so the difference is 0/0; use a larger step"
        )
    return taken


def _unit_vector(x, index):
    unit = np.zeros_like(x)
    unit[index] = 1
    return unit


def _checked(f, method, scalar):
    """Wrap f so that every value it returns is checked before it is differenced."""
    shapes = []

    def evaluate(point):
        value = np.asarray(f(point))
        if value.dtype.kind not in "iufc":
            raise TypeError(f"f must return numbers, got {value.dtype} at x = {_describe(point)}")
        if scalar and value.shape != ():
            raise ValueError(f"f must return a scalar, got shape {value.shape}; use jacobian")
        if method == "complex" and value.dtype.kind != "c":
            raise TypeError(
                f"f returned a real {value.dtype} at the complex point x = {_describe(point)}: the complex "
                "step needs f written with complex-safe operations (no abs, .real, float() or casts to "
                "a real dtype), so that the imaginary part carries the derivative"
            )
        if method != "complex" and value.dtype.kind == "c":
            raise TypeError(
                f"f returned a complex value at the real point x = {_describe(point)}; "
                f"method {method!r} needs a real-valued f"
            )
        if shapes and value.shape != shapes[0]:
            raise ValueError(f"f returned shape {value.shape} at x = {_describe(point)}, but {shapes[0]} before")
        shapes.append(value.shape)
        if not np.all(np.isfinite(value)):
            raise ValueError(f"f returned a non-finite value {_describe(value)} at x = {_describe(point)}")
        return value

    return evaluate


# --- checks shared with coursekit.zo ------------------------------------------


def _real_point(x, name="x"):
    """``x`` as a finite real floating array (integers become float64)."""
    array = np.asarray(x)
    if array.dtype.kind == "c":
        raise TypeError(f"{name} must be real, got complex dtype {array.dtype}")
    if array.dtype.kind in "iu":
        array = array.astype(np.float64)
    elif array.dtype.kind != "f":
        raise TypeError(f"{name} must be an array of real numbers, got dtype {array.dtype}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got {_describe(array)}")
    return array


def _positive_step(step, shape, dtype):
    """A positive finite step broadcast to ``shape`` (kept as is when shape is None)."""
    step = np.asarray(step)
    if step.dtype.kind not in "iuf":
        raise TypeError(f"step must be a real number or array, got dtype {step.dtype}")
    if not np.all(np.isfinite(step) & (step > 0)):
        raise ValueError(f"step must be positive and finite, got {_describe(step)}")
    if shape is not None:
        try:
            step = np.broadcast_to(step, shape)
        except ValueError:
            raise ValueError(f"step of shape {step.shape} does not broadcast to shape {shape}") from None
    step = step.astype(_floating(dtype))
    if np.any(step == 0):
        raise ValueError(f"step underflows to 0 in {np.dtype(_floating(dtype))}; use a larger step")
    return step



def _check_same_shape(name, shape, other_name, other_shape):
    if shape != other_shape:
        raise ValueError(f"{name} has shape {shape}, but {other_name} has shape {other_shape}; they must match")


def _floating(dtype):
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        return np.dtype(np.float64)
    if dtype.kind != "f":
        raise TypeError(f"need a real floating dtype, got {dtype}")
    return dtype


def _describe(array):
    return np.array2string(np.asarray(array), threshold=8, precision=6)
