"""Benchmark: what one gradient costs, estimated from function values or by AD.

For each dimension d in --dims, on the extended Rosenbrock function, measure
for every estimator:

- the number of function evaluations it spends (from the estimator's own
  definition: coursekit.fd.evaluations, 2 per random direction, 2d for the
  coordinate estimator; 0 for jax.grad, which costs a small multiple of one
  evaluation instead);
- the wall time of one gradient (median over repeats, time.perf_counter);
- the relative error against the analytic gradient;
- the wall time divided by jax.grad's in the same run (jit-compiled,
  compilation excluded, block_until_ready).

    python bench/run.py --out bench/results      # or: make bench

Writes <out>/bench.json (everything, plus the machine) and <out>/bench.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np
from tqdm import tqdm

jax.config.update("jax_enable_x64", True)  # compare like with like: float64 everywhere
import jax.numpy as jnp  # noqa: E402

from coursekit import fd, zo  # noqa: E402

DEFAULT_DIMS = (10, 100, 1000, 10000)
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


def median_time(call: Callable[[], object], min_repeats: int, min_total: float, max_repeats: int) -> tuple[float, int]:
    """Median wall time of ``call()``: at least ``min_repeats`` runs and ``min_total`` seconds."""
    times: list[float] = []
    while len(times) < max_repeats and (len(times) < min_repeats or sum(times) < min_total):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times), len(times)


def machine() -> dict[str, object]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "jax": jax.__version__,
        "jax_backend": jax.default_backend(),
        "jax_devices": [str(d) for d in jax.devices()],
    }


def run(dims: tuple[int, ...], min_repeats: int, min_total: float, max_repeats: int) -> dict[str, object]:
    rng = np.random.default_rng(SEED)
    points = {d: rng.uniform(-1.0, 1.5, size=d) for d in dims}
    rows = []
    grid = [(d, name) for d in dims for name in ["jax.grad", *estimators(d)]]
    jax_time: dict[int, float] = {}
    for d, name in tqdm(grid, desc="bench", unit="run"):
        x = points[d]
        exact = rosenbrock_gradient(x)
        if name == "jax.grad":
            grad = jax.jit(jax.grad(lambda z: rosenbrock(z, xp=jnp)))
            x_dev = jnp.asarray(x)
            grad(x_dev).block_until_ready()  # compile outside the timed region
            seconds, repeats = median_time(lambda: grad(x_dev).block_until_ready(), min_repeats, min_total, max_repeats)
            estimate, evals = np.asarray(grad(x_dev)), None  # AD: no function evaluations
            jax_time[d] = seconds
        else:
            estimate_fn, evals = estimators(d)[name]
            seconds, repeats = median_time(lambda: estimate_fn(x), min_repeats, min_total, max_repeats)
            estimate = np.asarray(estimate_fn(x))
        rows.append(
            {
                "dim": d,
                "method": name,
                "function_evals": evals if evals is None else int(evals),
                "seconds": seconds,
                "repeats": repeats,
                "relative_error": float(np.linalg.norm(estimate - exact) / np.linalg.norm(exact)),
            }
        )
    for row in rows:
        row["time_vs_jax_grad"] = row["seconds"] / jax_time[row["dim"]]
    # T, the time of one evaluation of f, explains the finite-difference rows: about (evals x T).
    one_evaluation = {
        d: median_time(lambda x=points[d]: rosenbrock(x), min_repeats, min_total, max_repeats)[0] for d in dims
    }
    return {
        "function": "extended Rosenbrock (float64)",
        "machine": machine(),
        "seconds_per_function_eval": {str(d): t for d, t in one_evaluation.items()},
        "results": rows,
    }


def to_markdown(report: dict[str, object]) -> str:
    m = report["machine"]
    lines = [
        "# Gradient estimators against jax.grad",
        "",
        f"Function: {report['function']}. Machine: {m['platform']}, {m['cpu_count']} CPUs, "
        f"Python {m['python']}, NumPy {m['numpy']}, JAX {m['jax']} ({m['jax_backend']}).",
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time gradient estimators against jax.grad.")
    parser.add_argument("--out", type=Path, default=Path("bench/results"), help="output folder")
    parser.add_argument("--dims", type=int, nargs="+", default=list(DEFAULT_DIMS))
    parser.add_argument("--min-repeats", type=int, default=3)
    parser.add_argument("--min-seconds", type=float, default=0.2, help="keep repeating until this much time is spent")
    parser.add_argument("--max-repeats", type=int, default=200)
    args = parser.parse_args(argv)

    start = time.perf_counter()
    report = run(tuple(args.dims), args.min_repeats, args.min_seconds, args.max_repeats)
    report["total_seconds"] = time.perf_counter() - start
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
    markdown = to_markdown(report)
    (args.out / "bench.md").write_text(markdown)
    print(markdown)
    print(f"Wrote {args.out / 'bench.json'} and {args.out / 'bench.md'} ({report['total_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
