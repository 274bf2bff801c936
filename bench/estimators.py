"""Suite "estimators": what one gradient costs, estimated from function values or by AD.

For each dimension d, on the extended Rosenbrock function, measure for every
estimator of lecture 1:

- the number of function evaluations it spends (from the estimator's own
  definition: coursekit.fd.evaluations, 2 per random direction, 2d for the
  coordinate estimator; 0 for jax.grad, which costs a small multiple of one
  evaluation instead);
- the wall time of one gradient (median over repeats, time.perf_counter);
- the relative error against the analytic gradient;
- the wall time divided by jax.grad's in the same run (jit-compiled,
  compilation excluded, block_until_ready).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np
from tqdm import tqdm

jax.config.update("jax_enable_x64", True)  # compare like with like: float64 everywhere
import jax.numpy as jnp  # noqa: E402

from coursekit import fd, zo  # noqa: E402

from .common import median_time  # noqa: E402

NAME = "estimators"
DEFAULT_DIMS = (10, 100, 1000, 10000)
QUICK_DIMS = (10, 100)
SEED = 0


def rosenbrock(x, xp=np):
    """Extended Rosenbrock, sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2.

    Written once for any array module ``xp`` with NumPy's API (numpy or
    jax.numpy), so the estimators and jax.grad differentiate the same code.
    """
    head, tail = x[:-1], x[1:]
    return xp.sum(100.0 * (tail - head**2) ** 2 + (1.0 - head) ** 2)


def rosenbrock_gradient(x: np.ndarray) -> np.ndarray:
    """The analytic gradient of :func:`rosenbrock`: the reference for the errors."""
    head, tail = x[:-1], x[1:]
    inner = tail - head**2
    g = np.zeros_like(x)
    g[:-1] += -400.0 * head * inner - 2.0 * (1.0 - head)
    g[1:] += 200.0 * inner
    return g


def estimators(dim: int) -> dict[str, tuple[Callable[[np.ndarray], np.ndarray], int]]:
    """name -> (gradient estimate of rosenbrock at x, function evaluations it uses)."""
    f = rosenbrock
    return {
        "fd central": (lambda x: fd.gradient(f, x, method="central"), fd.evaluations("central", dim)),
        "fd forward": (lambda x: fd.gradient(f, x, method="forward"), fd.evaluations("forward", dim)),
        "zo sphere, 1 direction": (
            lambda x: zo.zero_order_gradient(f, x, num_directions=1, distribution="sphere", seed=SEED),
            2,
        ),
        "zo sphere, 10 directions": (
            lambda x: zo.zero_order_gradient(f, x, num_directions=10, distribution="sphere", seed=SEED),
            20,
        ),
        "zo coordinate": (lambda x: zo.coordinate_estimate(f, x), 2 * dim),
    }


def run(quick: bool = False, dims: tuple[int, ...] | None = None, min_repeats: int = 3,
        min_seconds: float | None = None, max_repeats: int = 200) -> dict[str, object]:
    """The suite on ``dims``; ``quick``: d = 10 and 100 only, timed briefly (a smoke test)."""
    dims = tuple(dims or (QUICK_DIMS if quick else DEFAULT_DIMS))
    min_seconds = (0.01 if quick else 0.2) if min_seconds is None else min_seconds
    rng = np.random.default_rng(SEED)
    points = {d: rng.uniform(-1.0, 1.5, size=d) for d in dims}
    rows = []
    grid = [(d, name) for d in dims for name in ["jax.grad", *estimators(d)]]
    jax_time: dict[int, float] = {}
    for d, name in tqdm(grid, desc=NAME, unit="run"):
        x = points[d]
        exact = rosenbrock_gradient(x)
        if name == "jax.grad":
            grad = jax.jit(jax.grad(lambda z: rosenbrock(z, xp=jnp)))
            x_dev = jnp.asarray(x)
            grad(x_dev).block_until_ready()  # compile outside the timed region
            seconds, repeats = median_time(lambda: grad(x_dev).block_until_ready(),
                                           min_repeats, min_seconds, max_repeats)
            estimate, evals = np.asarray(grad(x_dev)), None  # AD: no function evaluations
            jax_time[d] = seconds
        else:
            estimate_fn, evals = estimators(d)[name]
            seconds, repeats = median_time(lambda: estimate_fn(x), min_repeats, min_seconds, max_repeats)
            estimate = np.asarray(estimate_fn(x))
        rows.append({
            "dim": d,
            "method": name,
            "function_evals": evals if evals is None else int(evals),
            "seconds": seconds,
            "repeats": repeats,
            "relative_error": float(np.linalg.norm(estimate - exact) / np.linalg.norm(exact)),
        })
    for row in rows:
        row["time_vs_jax_grad"] = row["seconds"] / jax_time[row["dim"]]
    # T, the time of one evaluation of f, explains the finite-difference rows: about (evals x T).
    one_evaluation = {
        d: median_time(lambda x=points[d]: rosenbrock(x), min_repeats, min_seconds, max_repeats)[0]
        for d in dims
    }
    return {
        "function": "extended Rosenbrock (float64)",
        "seconds_per_function_eval": {str(d): t for d, t in one_evaluation.items()},
        "results": rows,
    }


def to_markdown(report: dict[str, object]) -> str:
    lines = [
        "## Gradient estimators against jax.grad",
        "",
        f"Function: {report['function']}. "
        "Time: median wall time of one gradient; jax.grad is jit-compiled, compilation excluded.",
        "Relative error: against the analytic gradient. One evaluation of f (NumPy) takes "
        + ", ".join(f"{1e6 * t:.3g} us (d = {d})" for d, t in report["seconds_per_function_eval"].items())
        + ".",
        "",
        "| d | method | f evals | time (ms) | time / jax.grad | relative error |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        lines.append(
            f"| {r['dim']} | {r['method']} | {'-' if r['function_evals'] is None else r['function_evals']} "
            f"| {1e3 * r['seconds']:.3g} "
            f"| {r['time_vs_jax_grad']:.3g} | {r['relative_error']:.2e} |"
        )
    return "\n".join(lines) + "\n"
