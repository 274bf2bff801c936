"""Shared pieces of the coursekit.ad tests: test functions written once for NumPy and jax.numpy, and comparisons."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from coursekit import ad

RTOL = 1e-10


def assert_close(ours, theirs, rtol=RTOL):
    """Equal to ``rtol`` relative to the largest entry of ``theirs`` (entries near zero are compared on that scale)."""
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape, f"shape {ours.shape} != {theirs.shape}"
    scale = max(1e-300, float(np.max(np.abs(theirs), initial=0.0)))
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=rtol * scale)


def assert_all_close(ours, theirs, rtol=RTOL):
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert_close(a, b, rtol)


@dataclass(frozen=True)
class Case:
    """``fn(xp, *args)`` with arguments of ``shapes``; ``positive``: arguments drawn in [0.5, 2] instead of N(0, 1)."""

    name: str
    fn: Callable
    shapes: tuple
    positive: bool = False

    def args(self, seed, dtype=np.float64):
        rng = np.random.default_rng(seed)
        draw = (lambda s: rng.uniform(0.5, 2.0, s)) if self.positive else rng.standard_normal
        return tuple(np.asarray(draw(s), dtype=dtype) for s in self.shapes)

    def numpy(self, *args):
        return self.fn(np, *args)

    def jax(self, *args):
        return self.fn(jnp, *args)


def _logsumexp(xp, x, **kw):
    return ad.logsumexp(x, **kw) if xp is np else jax.nn.logsumexp(x, **kw)


def _softmax(xp, x, **kw):
    return ad.softmax(x, **kw) if xp is np else jax.nn.softmax(x, **kw)


UNARY = {
    "negative": lambda xp, x: -x,
    "exp": lambda xp, x: xp.exp(x),
    "sin": lambda xp, x: xp.sin(x),
    "cos": lambda xp, x: xp.cos(x),
    "tan": lambda xp, x: xp.tan(0.5 * x),
    "tanh": lambda xp, x: xp.tanh(x),
    "abs": lambda xp, x: xp.abs(x),
    "square": lambda xp, x: xp.square(x),
    "expm1": lambda xp, x: xp.expm1(x),
    "relu": lambda xp, x: xp.maximum(x, 0),
    "pow3": lambda xp, x: x**3,
    "pow_neg": lambda xp, x: (x * x + 1) ** -1.5,
    "positive": lambda xp, x: +x,
}
POSITIVE_UNARY = {
    "log": lambda xp, x: xp.log(x),
    "sqrt": lambda xp, x: xp.sqrt(x),
    "log1p": lambda xp, x: xp.log1p(x),
    "reciprocal": lambda xp, x: xp.reciprocal(x),
    "pow_half": lambda xp, x: x**0.5,
}
BINARY = {
    "add": lambda xp, x, y: x + y,
    "subtract": lambda xp, x, y: x - y,
    "multiply": lambda xp, x, y: x * y,
    "divide": lambda xp, x, y: x / (y * y + 1),
    "maximum": lambda xp, x, y: xp.maximum(x, y),
    "minimum": lambda xp, x, y: xp.minimum(x, y),
    "where": lambda xp, x, y: xp.where(x > y, x * y, y - x),
    "power": lambda xp, x, y: (x * x + 1) ** y,
    "rsub_const": lambda xp, x, y: 2.0 - x * y,
    "rdiv_const": lambda xp, x, y: 3.0 / (x * x + 1) + y,
}
# broadcasting pairs, scalars and 0-d included
BROADCAST_SHAPES = [((3, 1), (1, 4)), ((), (3,)), ((2, 3), (3,)), ((4, 1, 3), (2, 1)), ((2, 3), ()), ((2, 3), (2, 3))]

CASES = (
    [Case(f"{n}{s}", f, (s,)) for n, f in UNARY.items() for s in [(), (5,), (2, 3)]]
    + [Case(f"{n}{s}", f, (s,), positive=True) for n, f in POSITIVE_UNARY.items() for s in [(), (2, 3)]]
    + [Case(f"{n}{a}x{b}", f, (a, b)) for n, f in BINARY.items() for a, b in BROADCAST_SHAPES]
    + [
        Case("matmul vv", lambda xp, a, b: a @ b, ((3,), (3,))),
        Case("matmul mv", lambda xp, a, b: a @ b, ((2, 3), (3,))),
        Case("matmul vm", lambda xp, a, b: a @ b, ((3,), (3, 4))),
        Case("matmul mm", lambda xp, a, b: a @ b, ((2, 3), (3, 4))),
        Case("matmul batched", lambda xp, a, b: a @ b, ((5, 2, 3), (5, 3, 4))),
        Case("matmul broadcast", lambda xp, a, b: xp.matmul(a, b), ((5, 2, 3), (3, 4))),
        Case("matmul batch vector", lambda xp, a, b: a @ b, ((5, 2, 3), (3,))),
        Case("matmul vector batch", lambda xp, a, b: a @ b, ((3,), (2, 3, 4))),
        Case("dot mm", lambda xp, a, b: xp.dot(a, b), ((2, 3), (3, 4))),
        Case("dot vv", lambda xp, a, b: xp.dot(a, b), ((3,), (3,))),
        Case("outer", lambda xp, a, b: xp.outer(a, b), ((3,), (2, 2))),
        Case("transpose .T", lambda xp, a: a.T, ((2, 3),)),
        Case("transpose axes", lambda xp, a: xp.transpose(a, (1, 2, 0)), ((2, 3, 4),)),
        Case("transpose negative axes", lambda xp, a: xp.transpose(a, (-1, 0, 1)), ((2, 3, 4),)),
        Case("transpose method", lambda xp, a: a.transpose(2, 0, 1), ((2, 3, 4),)),
        Case("swapaxes", lambda xp, a: xp.swapaxes(a, 0, 2), ((2, 3, 4),)),
        Case("reshape", lambda xp, a: xp.reshape(a, (3, 2)) * 2, ((2, 3),)),
        Case("reshape -1 method", lambda xp, a: a.reshape(-1, 4) ** 2, ((2, 3, 4),)),
        Case("ravel", lambda xp, a: xp.ravel(a) ** 2, ((2, 3),)),
        Case("expand_dims", lambda xp, a: xp.expand_dims(a, 1) * xp.ones((2, 4, 3)), ((2, 3),)),
        Case("squeeze", lambda xp, a: xp.squeeze(a, axis=1), ((2, 1, 3),)),
        Case("broadcast_to", lambda xp, a: xp.broadcast_to(a, (4, 2, 3)) * xp.arange(24.0).reshape(4, 2, 3), ((2, 3),)),
        Case("concatenate", lambda xp, a, b: xp.concatenate([a, b, a], axis=0), ((2, 3), (4, 3))),
        Case("concatenate axis -1", lambda xp, a, b: xp.concatenate([a, xp.ones((2, 1)), b], axis=-1),
             ((2, 3), (2, 2))),
        Case("stack", lambda xp, a, b: xp.stack([a, b]), ((2, 3), (2, 3))),
        Case("stack axis 1", lambda xp, a, b: xp.stack([b, a, b], axis=1), ((2, 3), (2, 3))),
        Case("stack axis -1", lambda xp, a, b: xp.stack([a, b], axis=-1) ** 2, ((3,), (3,))),
        Case("index slice", lambda xp, a: a[1:, ::2], ((3, 5),)),
        Case("index negative", lambda xp, a: a[-1, :3] * a[-2, 1:], ((3, 4),)),
        Case("index ellipsis newaxis", lambda xp, a: a[..., None, 1] * 2, ((2, 3, 4),)),
        Case("index integer repeats", lambda xp, a: a[xp.array([0, 2, 2, 0, 1])] ** 2, ((3, 2),)),
        Case("index 2-d integer", lambda xp, a: a[xp.array([0, 1, 1]), xp.array([2, 0, 2])], ((2, 3),)),
        Case("index boolean", lambda xp, a: xp.sin(a[np.array([True, False, True])]), ((3, 2),)),
        Case("index scalar", lambda xp, a: a[1] * a[0], ((4,),)),
        Case("iterate", lambda xp, a: sum(r * (i + 1) for i, r in enumerate(a)), ((3, 2),)),
        Case("logsumexp", lambda xp, a: _logsumexp(xp, a), ((3, 4),)),
        Case("logsumexp axis", lambda xp, a: _logsumexp(xp, a, axis=1), ((3, 4),)),
        Case("logsumexp axis keepdims", lambda xp, a: _logsumexp(xp, a, axis=0, keepdims=True), ((3, 4),)),
        Case("logsumexp large", lambda xp, a: _logsumexp(xp, 1000 * a + 800, axis=-1), ((3, 4),)),
        Case("softmax", lambda xp, a: _softmax(xp, a), ((3, 4),)),
        Case("softmax axis 0", lambda xp, a: _softmax(xp, a * 500, axis=0), ((3, 4),)),
        Case("clip", lambda xp, a: xp.clip(a, -0.5, 0.7) * a, ((3, 4),)),
        Case("clip keywords", lambda xp, a: xp.clip(a, min=-0.3) ** 2, ((5,),)),
        Case("norm", lambda xp, a: xp.linalg.norm(a), ((3, 4),)),
        Case("norm axis", lambda xp, a: xp.linalg.norm(a, axis=1), ((3, 4),)),
        Case("norm 1", lambda xp, a: xp.linalg.norm(a, ord=1), ((4,),)),
        Case("norm inf keepdims", lambda xp, a: xp.linalg.norm(a, ord=np.inf, axis=-1, keepdims=True), ((3, 4),)),
        Case("var", lambda xp, a: xp.var(a, axis=0), ((3, 4),)),
        Case("std ddof", lambda xp, a: xp.std(a, axis=(0, 1), ddof=1, keepdims=True), ((3, 4, 2),)),
        Case("mlp layer", lambda xp, x, W, b: xp.tanh(x @ W + b), ((4, 3), (3, 2), (2,))),
        Case("mixed", lambda xp, x, y: xp.sum(xp.exp(xp.sin(x) * y) / (1 + y**2), axis=0) + xp.mean(x) * y[0],
             ((3, 2), (3, 2))),
    ]
)

REDUCTIONS = {
    "sum": lambda xp, x, **kw: xp.sum(x, **kw),
    "mean": lambda xp, x, **kw: xp.mean(x, **kw),
    "max": lambda xp, x, **kw: xp.max(x, **kw),
    "min": lambda xp, x, **kw: xp.min(x, **kw),
    "amax": lambda xp, x, **kw: xp.amax(x, **kw),
    "sum method": lambda xp, x, **kw: x.sum(**kw),
    "mean method": lambda xp, x, **kw: x.mean(**kw),
    "max method": lambda xp, x, **kw: x.max(**kw),
}


def axes_for(ndim):
    """Every kind of axis argument valid for ``ndim`` dimensions: None, ints, negatives, tuples."""
    out = [None]
    if ndim >= 1:
        out += [0, -1]
    if ndim >= 2:
        out += [1, (0, 1), (-1, 0)]
    if ndim >= 3:
        out += [(0, 2), (2, 0, 1)]
    return out
