"""coursekit.plots: each function returns a figure with the artists the lectures rely on."""

from types import SimpleNamespace

import numpy as np
import pytest
from matplotlib.animation import FuncAnimation
from matplotlib.figure import Figure

from coursekit import plots


def _legend_texts(ax):
    legend = ax.get_legend()
    return [t.get_text() for t in legend.get_texts()] if legend else []


def test_step_error_has_one_line_per_method_and_marks_optimal_steps():
    steps = np.logspace(-12, -1, 12)
    errors = {"forward": steps + 1e-16 / steps, "central": steps**2 + 1e-16 / steps, "complex": np.zeros(12)}
    fig = plots.plot_step_error(
        steps, errors, optimal_steps={"forward": 1.5e-8, "central": 6e-6}, orders={"forward": 1.0, "central": 2.0}
    )
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert ax.get_xscale() == ax.get_yscale() == "log"
    assert len([line for line in ax.lines if len(line.get_xdata()) == 12]) == 3
    assert len(ax.lines) == 5  # three curves + two vertical markers
    labels = _legend_texts(ax)
    assert any("forward" in t and "1.00" in t for t in labels)
    assert any("complex" in t for t in labels)
    assert "step" in ax.get_xlabel()


def test_estimator_statistics_has_two_panels_and_sqrt_reference():
    dims = [2, 8, 32]
    fig = plots.plot_estimator_statistics(
        dims, {"sphere": [0.1, 0.1, 0.1], "gaussian": [0.1, 0.2, 0.1]}, {"sphere": [1, 2, 4], "gaussian": [1.5, 3, 6]}
    )
    ax_bias, ax_spread = fig.axes
    assert len(ax_bias.lines) == 2
    assert len(ax_spread.lines) == 3
    assert any("sqrt" in t for t in _legend_texts(ax_spread))


def test_scale_factor_draws_one_over_d_reference():
    fig = plots.plot_scale_factor([2, 8, 32], {"with d": [1, 1, 1], "without d": [0.5, 0.125, 1 / 32]})
    (ax,) = fig.axes
    assert "1/d" in " ".join(_legend_texts(ax))
    reference = [line for line in ax.lines if line.get_label() == "$1/d$"][0]
    np.testing.assert_allclose(reference.get_ydata(), [0.5, 0.125, 1 / 32])


def test_dimension_scaling_panels():
    dims = [2, 4, 8]
    fig = plots.plot_dimension_scaling(dims, {"GD": [10, 10, 10], "ZO": [20, 40, 80]}, {"ZO": [40, 80, 160]})
    assert len(fig.axes) == 2
    assert "iterations" in fig.axes[0].get_ylabel()
    assert "evaluations" in fig.axes[1].get_ylabel()
    single = plots.plot_dimension_scaling(dims, {"GD": [10, 10, 10]}, reference_slope=None)
    assert len(single.axes) == 1 and len(single.axes[0].lines) == 1


def test_convergence_against_iterations_and_evaluations():
    history = SimpleNamespace(values=np.array([4.0, 2.0, 1.0, 0.5]), function_evals=np.array([0, 2, 4, 6]))
    fig = plots.plot_convergence({"ZO": history}, x_axis=("iterations", "function_evals"), f_star=0.0)
    ax_iter, ax_evals = fig.axes
    assert ax_iter.get_yscale() == "log"
    np.testing.assert_array_equal(ax_iter.lines[0].get_xdata(), [0, 1, 2, 3])
    np.testing.assert_array_equal(ax_evals.lines[0].get_xdata(), [0, 2, 4, 6])
    assert _legend_texts(ax_iter) == ["ZO"]
    exact = SimpleNamespace(values=np.array([4.0, 1.0]), function_evals=np.array([0, 0]))
    fig = plots.plot_convergence({"GD": exact, "ZO": history}, x_axis=("iterations", "function_evals"))
    assert _legend_texts(fig.axes[0]) == ["GD", "ZO"]
    assert _legend_texts(fig.axes[1]) == ["ZO"]  # GD spends no function evaluations
    with pytest.raises(ValueError):
        plots.plot_convergence({"ZO": history}, x_axis="seconds")


def test_points_one_panel_per_configuration():
    rng = np.random.default_rng(0)
    W_true = rng.normal(size=(5, 2))
    fig = plots.plot_points({"GD": W_true, "ZO": W_true + 0.1}, W_true)
    assert [ax.get_title() for ax in fig.axes] == ["GD", "ZO"]
    assert len(fig.axes[0].collections) == 2  # truth and recovered scatters
    assert len(plots.plot_points(W_true, W_true).axes) == 1


def test_animation_renders_to_html():
    rng = np.random.default_rng(0)
    W_true = rng.normal(size=(6, 2))
    trajectory = [W_true + rng.normal(size=(6, 2)) / (k + 1) for k in range(10)]
    anim = plots.animate_mds({"GD": trajectory, "ZO": [w.ravel() for w in trajectory]}, W_true, num_frames=4)
    assert isinstance(anim, FuncAnimation)
    html = anim.to_jshtml()
    assert "<img" in html or "data:image/png" in html
