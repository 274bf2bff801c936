"""The figures the lectures show.

Every function takes numbers that :mod:`coursekit.fd`, :mod:`coursekit.zo` or
:mod:`coursekit.mds` computed and returns a :class:`matplotlib.figure.Figure`
(or a :class:`matplotlib.animation.FuncAnimation`). Nothing here computes an
estimator or runs an optimizer: the figures only draw.

Figures are built with the object-oriented API (``Figure()``, not ``pyplot``),
so the library never selects a backend and never leaves figures open in
pyplot's global state. In a notebook run ``%matplotlib inline`` once and the
returned figure is shown as the cell's value; in a script call
``fig.savefig(...)``.

Example::

    import numpy as np
    from coursekit import fd, plots

    f = np.sin
    steps = np.logspace(-14, -1, 40)
    errors = {m: fd.step_error_curve(f, 1.0, np.cos(1.0), steps, method=m)
              for m in ("forward", "central")}
    fig = plots.plot_step_error(steps, errors)
    fig.savefig("step_error.png")
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.animation import FuncAnimation
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = [
    "plot_step_error",
    "plot_estimator_statistics",
    "plot_scale_factor",
    "plot_dimension_scaling",
    "plot_convergence",
    "plot_points",
    "animate_mds",
]

_X_AXIS_LABELS = {
    "iterations": "iteration $k$",
    "function_evals": "function evaluations",
    "gradient_evals": "gradient evaluations",
}


def _new_figure(ncols: int = 1, width: float = 6.0, height: float = 4.0) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


_MARKERS = ("o", "s", "^", "v", "D", "P", "X")


def _dimension_axis(ax: Axes, dims: np.ndarray) -> None:
    """Log x axis labelled at the dimensions themselves (2, 8, 32, ...), not at powers of ten."""
    ax.set_xscale("log")
    ax.set_xticks(dims, [f"{d:g}" for d in dims])
    ax.minorticks_off()


def _reference_line(ax: Axes, x: np.ndarray, y_anchor: float, slope: float, label: str) -> None:
    """Draw ``y = y_anchor * (x / x[0]) ** slope`` as a dotted guide for the eye."""
    x = np.asarray(x, dtype=float)
    ax.plot(x, y_anchor * (x / x[0]) ** slope, ":", color="0.4", label=label)


def plot_step_error(
    steps: Sequence[float] | np.ndarray,
    errors_by_method: Mapping[str, Sequence[float] | np.ndarray],
    *,
    optimal_steps: Mapping[str, float] | None = None,
    orders: Mapping[str, float] | None = None,
    title: str | None = "Finite-difference error against the step $h$",
    floor: float = 1e-17,
) -> Figure:
    """Log-log plot of derivative error against step size, one line per method.

    For forward and central differences the curve is V-shaped: truncation error
    (slope 1 or 2) on the right, round-off error (slope -1) on the left. The
    complex-step curve has no left branch.

    Args:
        steps: the steps ``h`` (positive).
        errors_by_method: method name -> errors at ``steps``
            (e.g. from :func:`coursekit.fd.step_error_curve`).
        optimal_steps: method name -> step to mark with a vertical dashed line
            (e.g. ``sqrt(eps)`` for forward, ``cbrt(eps)`` for central).
        orders: method name -> measured order (from
            :func:`coursekit.fd.observed_order`), shown in the legend.
        title: axes title, or ``None``.
        floor: errors below this (exact zeros, which the complex step
            produces) are drawn at ``floor`` so that the log axis accepts them.

    Returns:
        The figure, one axes.
    """
    fig, (ax,) = _new_figure(width=7.0, height=4.5)
    steps = np.asarray(steps, dtype=float)
    for method, errors in errors_by_method.items():
        label = method
        if orders and method in orders:
            label = f"{method} (measured order {orders[method]:.2f})"
        errors = np.maximum(np.asarray(errors, dtype=float), floor)
        (line,) = ax.loglog(steps, errors, "o-", markersize=3, label=label)
        if optimal_steps and method in optimal_steps:
            ax.axvline(optimal_steps[method], linestyle="--", color=line.get_color(), alpha=0.7)
    ax.set_xlabel("step $h$")
    ax.set_ylabel("absolute error")
    _finish_axes(ax)
    if title:
        ax.set_title(title)
    return fig


def plot_estimator_statistics(
    dims: Sequence[int] | np.ndarray,
    mean_error: Mapping[str, Sequence[float] | np.ndarray],
    single_error: Mapping[str, Sequence[float] | np.ndarray],
    *,
    title: str | None = "Zero-order estimators as the dimension grows",
) -> Figure:
    """Bias and spread of gradient estimators against the dimension ``d``.

    Args:
        dims: the dimensions.
        mean_error: estimator -> relative error of the Monte-Carlo *mean*
            estimate, ``||mean(G) - grad f|| / ||grad f||`` (the bias, plus
            the Monte-Carlo noise of the mean).
        single_error: estimator -> relative root-mean-square error of a
            *single* estimate, ``sqrt(mean ||G - grad f||^2) / ||grad f||``.
            For a two-point estimator with the right scale this grows like
            ``sqrt(d)``; a reference line with that slope is drawn.
        title: figure title, or ``None``.

    Returns:
        The figure, two axes (bias left, spread right).
    """
    fig, (ax_bias, ax_spread) = _new_figure(ncols=2, width=5.0, height=4.0)
    dims = np.asarray(dims, dtype=float)
    for marker, (label, values) in zip(_MARKERS, mean_error.items()):
        ax_bias.loglog(dims, np.asarray(values, dtype=float), marker=marker, label=label)
    ax_bias.set_title("error of the mean estimate")
    ax_bias.set_ylabel(r"$\|\bar G - \nabla f\| \,/\, \|\nabla f\|$")
    first_spread = None
    for marker, (label, values) in zip(_MARKERS, single_error.items()):
        values = np.asarray(values, dtype=float)
        first_spread = values[0] if first_spread is None else first_spread
        ax_spread.loglog(dims, values, marker=marker, label=label)
    if first_spread is not None:
        _reference_line(ax_spread, dims, first_spread, 0.5, r"$\propto \sqrt{d}$")
    ax_spread.set_title("error of one estimate")
    ax_spread.set_ylabel(r"$\sqrt{\mathbb{E}\|G - \nabla f\|^2} \,/\, \|\nabla f\|$")
    for ax in (ax_bias, ax_spread):
        _dimension_axis(ax, dims)
        ax.set_xlabel("dimension $d$")
        _finish_axes(ax)
    if title:
        fig.suptitle(title)
    return fig


def plot_scale_factor(
    dims: Sequence[int] | np.ndarray,
    ratios: Mapping[str, Sequence[float] | np.ndarray],
    *,
    title: str | None = "How much of the gradient the average estimate recovers",
) -> Figure:
    """Projection of the mean estimate on the true gradient, against ``d``.

    Plots ``<mean(G), grad f> / ||grad f||^2`` (1 means unbiased in the
    direction of the gradient) with a ``1/d`` reference line: a sphere
    estimator without its factor ``d`` falls on that line.

    Args:
        dims: the dimensions.
        ratios: estimator -> the ratio at each dimension.
        title: axes title, or ``None``.

    Returns:
        The figure, one axes.
    """
    fig, (ax,) = _new_figure(width=6.5, height=4.0)
    dims = np.asarray(dims, dtype=float)
    for marker, (label, values) in zip(_MARKERS, ratios.items()):
        ax.loglog(dims, np.asarray(values, dtype=float), marker=marker, alpha=0.85, label=label)
    _reference_line(ax, dims, 1.0 / dims[0], -1.0, r"$1/d$")
    _dimension_axis(ax, dims)
    ax.axhline(1.0, color="0.6", linewidth=0.8)
    ax.set_xlabel("dimension $d$")
    ax.set_ylabel(r"$\langle \bar G, \nabla f \rangle \,/\, \|\nabla f\|^2$")
    _finish_axes(ax)
    if title:
        ax.set_title(title)
    return fig


def plot_dimension_scaling(
    dims: Sequence[int] | np.ndarray,
    iterations: Mapping[str, Sequence[float] | np.ndarray],
    function_evals: Mapping[str, Sequence[float] | np.ndarray] | None = None,
    *,
    reference_slope: float | None = 1.0,
    title: str | None = "Cost of reaching a fixed accuracy",
) -> Figure:
    """Iterations (and function evaluations) to reach an accuracy, against ``n``.

    Args:
        dims: the dimensions ``n``.
        iterations: method -> iterations needed at each dimension (NaN where
            the method did not reach the accuracy; those points are not drawn).
        function_evals: method -> function evaluations needed, or ``None`` for
            a single panel. Methods that use no function values (exact
            gradients) can be left out.
        reference_slope: draw a dotted ``n ** reference_slope`` line through
            the first point of the last method in ``iterations``; ``None`` for none.
        title: figure title, or ``None``.

    Returns:
        The figure: one axes, or two (iterations left, evaluations right).
    """
    panels = [("iterations to reach the accuracy", iterations)]
    if function_evals is not None:
        panels.append(("function evaluations to reach the accuracy", function_evals))
    fig, axes = _new_figure(ncols=len(panels), width=5.0, height=4.0)
    dims = np.asarray(dims, dtype=float)
    for ax, (ylabel, series) in zip(axes, panels):
        last = None
        for marker, (label, values) in zip(_MARKERS, series.items()):
            values = np.asarray(values, dtype=float)
            ax.loglog(dims, values, marker=marker, label=label)
            last = values
        if reference_slope is not None and last is not None and np.isfinite(last[0]):
            _reference_line(ax, dims, last[0], reference_slope, rf"$\propto n^{{{reference_slope:g}}}$")
        _dimension_axis(ax, dims)
        ax.set_xlabel("dimension $n$")
        ax.set_ylabel(ylabel)
        _finish_axes(ax)
    if title:
        fig.suptitle(title)
    return fig


def _history_axis(history: Any, x_axis: str) -> np.ndarray:
    """The x coordinates of ``history.values`` for the requested axis."""
    values = np.asarray(history.values)
    if x_axis == "iterations":
        return np.arange(len(values))
    counts = np.asarray(getattr(history, x_axis), dtype=float)
    if counts.ndim == 0:  # only a total is recorded: spread it evenly
        return np.linspace(0.0, float(counts), len(values))
    return counts


def plot_convergence(
    histories: Mapping[str, Any],
    *,
    x_axis: str | Sequence[str] = "iterations",
    f_star: float = 0.0,
    title: str | None = None,
) -> Figure:
    """Suboptimality ``f(x_k) - f*`` of optimization runs on a log scale.

    Args:
        histories: label -> a :class:`coursekit.zo.History` (anything with
            ``values`` and, for the evaluation axes, ``function_evals`` /
            ``gradient_evals`` recorded per iteration).
        x_axis: ``"iterations"``, ``"function_evals"`` or ``"gradient_evals"``,
            or a sequence of them for side-by-side panels. On an evaluation
            axis, runs that spent none of that kind (exact gradient descent
            on ``"function_evals"``) are left out.
        f_star: the optimal value subtracted from ``values``.
        title: figure title, or ``None``.

    Returns:
        The figure, one axes per entry of ``x_axis``.
    """
    axes_names = [x_axis] if isinstance(x_axis, str) else list(x_axis)
    for name in axes_names:
        if name not in _X_AXIS_LABELS:
            raise ValueError(f"x_axis must be one of {sorted(_X_AXIS_LABELS)}, got {name!r}")
    fig, axes = _new_figure(ncols=len(axes_names), width=5.5 if len(axes_names) > 1 else 6.5, height=4.0)
    for ax, name in zip(axes, axes_names):
        for label, history in histories.items():
            x = _history_axis(history, name)
            if name != "iterations" and not np.any(x > 0):
                continue  # e.g. exact gradient descent spends no function evaluations
            gap = np.asarray(history.values, dtype=float) - f_star
            gap = np.where(gap > 0, gap, np.nan)  # exact zeros cannot sit on a log axis
            ax.semilogy(x, gap, label=label)
        ax.set_xlabel(_X_AXIS_LABELS[name])
        ax.set_ylabel(r"$f(x_k) - f^*$")
        _finish_axes(ax)
    if title:
        fig.suptitle(title)
    return fig


def _draw_points(ax: Axes, W: np.ndarray, W_true: np.ndarray, title: str) -> None:
    W, W_true = np.asarray(W), np.asarray(W_true)
    for start, end in zip(W_true, W):
        ax.plot([start[0], end[0]], [start[1], end[1]], "-", color="0.7", linewidth=0.8)
    ax.scatter(W_true[:, 0], W_true[:, 1], s=30, facecolors="none", edgecolors="k", label="truth")
    ax.scatter(W[:, 0], W[:, 1], s=14, color="C3", label="recovered")
    ax.set_title(title)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_points(
    points: Mapping[str, np.ndarray] | np.ndarray,
    W_true: np.ndarray,
    *,
    title: str | None = None,
) -> Figure:
    """Recovered 2-D point configurations next to the truth.

    Each recovered point is joined to its true position by a grey segment.
    Align the configurations first (:func:`coursekit.mds.procrustes_align`):
    MDS recovers points only up to rotation, reflection and translation.

    Args:
        points: one ``(N, 2)`` array, or label -> ``(N, 2)`` array for one
            panel per label.
        W_true: the ``(N, 2)`` true points.
        title: figure title, or ``None``.

    Returns:
        The figure, one axes per configuration.
    """
    if not isinstance(points, Mapping):
        points = {"recovered": points}
    fig, axes = _new_figure(ncols=len(points), width=3.6, height=3.8)
    for ax, (label, W) in zip(axes, points.items()):
        _draw_points(ax, W, W_true, label)
    axes[0].legend(fontsize="small", loc="best")
    if title:
        fig.suptitle(title)
    return fig


def animate_mds(
    trajectories: Mapping[str, Sequence[np.ndarray]],
    W_true: np.ndarray,
    *,
    num_frames: int = 20,
    interval: int = 200,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
) -> FuncAnimation:
    """Animate several optimizers recovering the same point configuration.

    Args:
        trajectories: label -> iterates ``W_0, W_1, ...`` (each ``(N, 2)``, or
            flat of length ``2N``), e.g. ``History.points`` from
            :func:`coursekit.zo.gradient_descent` with ``record_points=True``.
        W_true: the ``(N, 2)`` true points.
        num_frames: frames in the animation; iterates are subsampled evenly.
        interval: milliseconds between frames.
        transform: applied to every iterate before drawing, e.g.
            ``lambda W: mds.procrustes_align(W, W_true)``.

    Returns:
        The animation. In a notebook show it with
        ``IPython.display.HTML(anim.to_jshtml())``.
    """
    W_true = np.asarray(W_true)
    fig, axes = _new_figure(ncols=len(trajectories), width=3.2, height=3.4)
    frames_by_label = {}
    for label, trajectory in trajectories.items():
        picks = np.unique(np.linspace(0, len(trajectory) - 1, num_frames).round().astype(int))
        frames = [np.asarray(trajectory[i]).reshape(W_true.shape) for i in picks]
        if transform is not None:
            frames = [transform(W) for W in frames]
        frames_by_label[label] = (picks, frames)
    all_points = np.concatenate([W_true] + [f for _, fs in frames_by_label.values() for f in fs])
    low, high = all_points.min(axis=0), all_points.max(axis=0)
    pad = 0.05 * (high - low).max()

    scatters = []
    for ax, (label, _) in zip(axes, frames_by_label.items()):
        ax.scatter(W_true[:, 0], W_true[:, 1], s=30, facecolors="none", edgecolors="k")
        scatters.append(ax.scatter([], [], s=14, color="C3"))
        ax.set_xlim(low[0] - pad, high[0] + pad)
        ax.set_ylim(low[1] - pad, high[1] + pad)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(label)
    num = max(len(picks) for picks, _ in frames_by_label.values())

    def update(frame: int):
        for ax, scatter, (label, (picks, frames)) in zip(axes, scatters, frames_by_label.items()):
            i = min(frame, len(frames) - 1)
            scatter.set_offsets(frames[i])
            ax.set_title(f"{label}: iteration {picks[i]}")
        return scatters

    update(0)
    return FuncAnimation(fig, update, frames=num, interval=interval, blit=False)


def _finish_axes(ax) -> None:
    """The light grid and small legend every figure of the course uses."""
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
