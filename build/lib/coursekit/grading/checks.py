"""The checks behind the test cells of the exercises.

Every check draws its inputs from a seed, computes the expected answer with the
library's reference implementation *out of process* (:mod:`.reference`) before
the student's function ever runs, then calls the student's function on copies
and compares. Test cells only call these functions, so intermediate values live
in this module's frames, never in the notebook's globals where an answer could
read them.

Tolerances. The student's code and the reference evaluate the same formula on
bit-identical inputs; they may differ only in the order of the last few
floating-point operations. The difference is therefore a few ulps of the
*terms before cancellation* (e.g. f(x+h)/h for a difference quotient), and the
tolerance is ``64 eps`` times that scale plus ``1e-8`` times the size of the
answer. A wrong formula (forward instead of central, a missing factor d or 2)
is off by O(h) or O(1) relative, many orders of magnitude above.
"""

import copy
import warnings

import numpy as np

from .reference import reference_many
from .testfunctions import random_function

EPS = np.finfo(np.float64).eps


def _as_result(name, value, shape):
    got = np.asarray(value)
    if got.dtype.kind not in "fiu":
        raise AssertionError(f"{name} must return a float array, got dtype {got.dtype}")
    if got.shape != tuple(shape):
        raise AssertionError(f"{name} returned shape {got.shape}, expected {tuple(shape)}")
    return got.astype(np.float64)


def _assert_close(name, got, expected, cancellation_scale, where):
    error = np.max(np.abs(got - expected), initial=0.0)
    tolerance = 1e-8 * np.max(np.abs(expected), initial=0.0) + 64 * EPS * cancellation_scale
    if not error <= tolerance:  # also catches NaN
        raise AssertionError(
            f"{name}: wrong result for {where}: max abs error {error:.3e} > tolerance {tolerance:.3e}")


def _call(answer, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return answer(*copy.deepcopy(args))


def _random_unit(rng, shape):
    z = rng.standard_normal(shape)
    return z / np.linalg.norm(z)


def check_central_difference(answer, shapes, seed, h=1e-4):
    """``answer(f, x, h)`` against ``coursekit.fd.gradient(f, x, "central", step=h)``."""
    rng = np.random.default_rng(seed)
    cases = []
    for shape in shapes:
        f, _ = random_function(rng, int(np.prod(shape)))
        cases.append((f, rng.standard_normal(shape)))
    expected = reference_many("coursekit.fd.gradient",
                              [((f, x, "central"), {"step": h}) for f, x in cases])
    for (f, x), want in zip(cases, expected):
        got = _as_result("central_difference_gradient", _call(answer, f, x, h), x.shape)
        scale = (abs(f(x)) + 1.0) / h
        _assert_close("central_difference_gradient", got, want, scale, f"x of shape {x.shape}")


def check_two_point_estimate(answer, shapes, seed, tau=1e-3):
    """``answer(f, x, u, tau)`` against ``coursekit.zo.two_point_estimate`` (central, scale d)."""
    rng = np.random.default_rng(seed)
    cases = []
    for shape in shapes:
        f, _ = random_function(rng, int(np.prod(shape)))
        cases.append((f, rng.standard_normal(shape), _random_unit(rng, shape)))
    expected = reference_many(
        "coursekit.zo.two_point_estimate",
        [((f, x, u, tau), {"scale": x.size, "scheme": "central"}) for f, x, u in cases])
    for (f, x, u), want in zip(cases, expected):
        got = _as_result("two_point_estimate", _call(answer, f, x, u, tau), x.shape)
        scale = x.size * (abs(f(x + tau * u)) + abs(f(x - tau * u))) / (2 * tau)
        _assert_close("two_point_estimate", got, want, scale, f"x of shape {x.shape}")


def check_two_point_unbiased(answer, size, seed, directions=20_000, tau=1e-4):
    """The mean of ``answer`` over many random unit directions approaches the gradient.

    E[d (u.g) u] = g for u uniform on the unit sphere (E[u u^T] = I/d), and the
    mean of N estimates has relative error about sqrt((d-1)/N); we allow five
    times that (plus the O(tau^2) bias, negligible here).
    """
    rng = np.random.default_rng(seed)
    f, gradient = random_function(rng, size)
    x = rng.standard_normal(size)
    g = gradient(x)
    total = np.zeros(size)
    for _ in range(directions):
        u = _random_unit(rng, size)
        total += _as_result("two_point_estimate", answer(f, x.copy(), u, tau), (size,))
    error = np.linalg.norm(total / directions - g) / np.linalg.norm(g)
    allowed = 5 * np.sqrt((size - 1) / directions)
    if not error <= allowed:
        raise AssertionError(
            f"two_point_estimate: the mean over {directions} directions is off the gradient by "
            f"{error:.3f} (relative); an unbiased estimator stays below {allowed:.3f}")


def _squared_distances(W):
    diff = W[:, None, :] - W[None, :, :]
    return np.sum(diff**2, axis=-1)


def mds_loss(W, D):
    """L(W) = sum_ij (||W_i - W_j||^2 - D_ij)^2."""
    return np.sum((_squared_distances(W) - D) ** 2)


def _random_mds_problem(rng, n, dim):
    W = rng.standard_normal((n, dim))
    D = _squared_distances(rng.standard_normal((n, dim)))
    return W, D


def _mds_scale(W, D):
    # the size of the terms 8 r_ij (W_i - W_j) summed into the gradient
    r = np.abs(_squared_distances(W) - D)
    spread = np.max(np.abs(W[:, None, :] - W[None, :, :]), axis=-1)
    return 8 * np.max(np.sum(r * spread, axis=1))


def check_mds_gradient(answer, sizes, seed):
    """``answer(W, D)`` against ``coursekit.mds.gradient(W, D)`` for (n, dim) in ``sizes``."""
    rng = np.random.default_rng(seed)
    cases = [_random_mds_problem(rng, n, dim) for n, dim in sizes]
    expected = reference_many("coursekit.mds.gradient", [((W, D), {}) for W, D in cases])
    for (W, D), want in zip(cases, expected):
        got = _as_result("mds_gradient", _call(answer, W, D), W.shape)
        _assert_close("mds_gradient", got, want, _mds_scale(W, D), f"W of shape {W.shape}")


def classical_mds(D, dim):
    """Points whose squared distances are D when D is Euclidean: top eigenpairs of -J D J / 2."""
    n = len(D)
    J = np.eye(n) - np.ones((n, n)) / n
    values, vectors = np.linalg.eigh(-0.5 * J @ D @ J)
    top = np.argsort(values)[::-1][:dim]
    return vectors[:, top] * np.sqrt(np.maximum(values[top], 0.0))


def check_mds_properties(answer, n, dim, seed, epsilon=1e-5):
    """Two oracles independent of coursekit.mds.

    1. At the classical-MDS embedding of an exactly Euclidean D every residual
       vanishes, so the gradient is zero up to rounding.
    2. At a random W the directional derivative <grad, V> matches the central
       difference (L(W + eps V) - L(W - eps V)) / (2 eps), whose error is
       O(eps^2) relative.
    """
    rng = np.random.default_rng(seed)
    D = _squared_distances(rng.standard_normal((n, dim)))
    W = classical_mds(D, dim)
    got = _as_result("mds_gradient", _call(answer, W, D), W.shape)
    scale = 8 * n * np.max(D) * np.max(np.abs(W))
    if not np.max(np.abs(got)) <= 1e-9 * scale:
        raise AssertionError(
            f"mds_gradient: not zero at an exact embedding (max |grad| {np.max(np.abs(got)):.3e})")

    W, D = _random_mds_problem(rng, n, dim)
    V = rng.standard_normal(W.shape)
    got = _as_result("mds_gradient", _call(answer, W, D), W.shape)
    directional = np.sum(got * V)
    difference = (mds_loss(W + epsilon * V, D) - mds_loss(W - epsilon * V, D)) / (2 * epsilon)
    if not abs(directional - difference) <= 1e-6 * np.sum(np.abs(got * V)) + 1e-6:
        raise AssertionError(
            f"mds_gradient: <gradient, V> = {directional:.6e} but the loss changes at rate "
            f"{difference:.6e} along V")
