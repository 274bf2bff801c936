r"""Boxes: traced values that take part in NumPy, and the dispatch that routes their operations.

A *box* wraps a value and belongs to one *trace*, the transformation that
created it (forward mode carries a tangent, reverse mode records a graph node).
Boxes join in ordinary NumPy code through NumPy's two override protocols:
``__array_ufunc__`` (``np.sin(x)``, ``x + y``, ``x @ W``) and
``__array_function__`` (``np.sum``, ``np.reshape``, ``np.concatenate``...). Every
such call lands in :func:`dispatch`, which looks the primitive up in the rule
table (:mod:`coursekit.ad.rules`) and hands it to the trace of the box with the
**highest level**.

Levels are what make nesting correct. Each application of a transformation
(one call of ``jvp`` or ``vjp``) draws a fresh, larger level, so an inner
transformation always outranks the one it runs inside. The top trace unwraps
only its own boxes; boxes of lower levels stay inside as constants and are
handled when the top trace computes the primitive on them. Two
perturbations therefore never mix: the classic "perturbation confusion" of
nested derivatives (Siskind & Pearlmutter 2005) cannot happen.

(NumPy asks only one argument *per type* for an override, so a box cannot
decline with ``NotImplemented`` and wait for a higher box of the same type to be
asked: the box that is asked looks for the top box itself.)

References: Griewank & Walther, *Evaluating Derivatives*, 2nd ed. (2008);
Baydin et al., "Automatic differentiation in machine learning: a survey",
JMLR 18 (2018); JAX's autodidax (conventions and the level mechanism).
"""

from __future__ import annotations

import inspect
import itertools

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin


class UnsupportedOperationError(TypeError):
    """A NumPy operation on a traced value that coursekit.ad cannot differentiate (or would differentiate wrongly)."""


# The rule table: primitive -> Rule. Filled row by row in coursekit.ad.rules.
RULES: dict = {}

# NumPy functions that coursekit.ad differentiates by running them as compositions of
# primitives (np.clip as maximum then minimum, ...): function -> its composition.
DERIVED: dict = {}

# Operations whose result does not depend differentiably on their inputs
# (comparisons, sign, shapes, arg-max...): computed on the plain values.
CONSTANT_OPERATIONS: set = set()

_levels = itertools.count(1)


def new_level() -> int:
    """A level above every level drawn so far: the next transformation outranks all running ones."""
    return next(_levels)


def raw(x):
    """The plain NumPy value inside any number of boxes (stops every derivative)."""
    while isinstance(x, Box):
        x = x.value
    return x


def _raw_tree(x):
    if isinstance(x, (list, tuple)):
        return type(x)(_raw_tree(v) for v in x)
    if isinstance(x, dict):
        return {k: _raw_tree(v) for k, v in x.items()}
    return raw(x)


def operation_name(op) -> str:
    """``numpy.sin``, ``numpy.sum``, ``numpy.linalg.norm``, or the bare name of an internal primitive."""
    if isinstance(op, np.ufunc):
        return f"numpy.{op.__name__}"
    module = getattr(op, "__module__", None) or ""
    if module == "numpy" or module.startswith("numpy."):
        return f"{module}.{op.__name__}"
    return getattr(op, "__name__", repr(op))


def supported_operations() -> list[str]:
    """Sorted names of what coursekit.ad differentiates: the primitives of the rule table and the
    NumPy functions it runs as compositions of them (``numpy.clip``, ``numpy.linalg.norm``, ...)."""
    return sorted(operation_name(op) for op in [*RULES, *DERIVED])


def _unsupported(what: str, why: str = "is not supported by coursekit.ad") -> UnsupportedOperationError:
    return UnsupportedOperationError(f"{what} {why}; supported: {', '.join(supported_operations())}")


def dispatch(prim, args: tuple, params: dict):
    """Apply primitive ``prim`` to ``args`` (some of them boxes) through the trace of the top box."""
    rule = RULES.get(prim)
    if rule is None:
        if prim in CONSTANT_OPERATIONS:
            return prim(*_raw_tree(args), **params)
        raise _unsupported(operation_name(prim))
    top = None
    for a in args:
        if isinstance(a, Box) and (top is None or a.trace.level > top.trace.level):
            top = a
    if top is None:  # boxes only in a condition or an index: nothing to differentiate
        return (rule.impl or prim)(*args, **params)
    return top.trace.process(prim, rule, args, params)


_signatures: dict = {}


def _dispatch_function(func, args, kwargs):
    rule = RULES.get(func)
    if rule is None and func in DERIVED:
        return DERIVED[func](*args, **kwargs)
    if rule is None:
        if func in CONSTANT_OPERATIONS:
            return func(*_raw_tree(args), **_raw_tree(kwargs))
        raise _unsupported(operation_name(func))
    signature = _signatures.get(func)
    if signature is None:
        signature = _signatures[func] = inspect.signature(func)
    arguments = signature.bind(*args, **kwargs).arguments
    names = list(signature.parameters)[: rule.arrays]
    if any(name not in arguments for name in names):  # e.g. np.where(condition) == np.nonzero
        return func(*_raw_tree(args), **_raw_tree(kwargs))
    arrays = [arguments.pop(name) for name in names]
    if rule.variadic:
        arrays = list(arrays[0])
    params = {}
    for name, value in arguments.items():
        if name in rule.params:
            params[name] = value
        elif value is not signature.parameters[name].default:
            raise _unsupported(f"{operation_name(func)}(..., {name}=...)", "is not supported on traced values")
    return dispatch(func, tuple(arrays), params)


def _refuse_conversion(kind: str):
    return UnsupportedOperationError(
        f"{kind} of a traced value would drop its derivative; keep computing with NumPy "
        "operations on it (coursekit.ad traces them), and convert only the result"
    )


class Box(NDArrayOperatorsMixin):
    """A value under a transformation: ``value`` (a NumPy array or a box of a lower level) and its ``trace``."""

    __slots__ = ("trace", "value")

    def __init__(self, trace, value):
        self.trace = trace
        self.value = value

    # --- the two NumPy protocols -------------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method != "__call__":
            raise _unsupported(f"numpy.{ufunc.__name__}.{method}", "(a ufunc method) is not supported on traced values")
        if "out" in kwargs:
            raise UnsupportedOperationError(
                f"numpy.{ufunc.__name__} with out= (an in-place update) is not supported on traced values: "
                "it would overwrite a value the derivative needs; write y = f(x) instead of f(x, out=y) or x op= y"
            )
        if kwargs:
            what = f"numpy.{ufunc.__name__}(..., {', '.join(kwargs)}=...)"
            raise _unsupported(what, "is not supported on traced values")
        return dispatch(ufunc, inputs, {})

    def __array_function__(self, func, types, args, kwargs):
        return _dispatch_function(func, args, kwargs)

    def __array__(self, dtype=None, copy=None):
        raise _refuse_conversion(
            "Converting to a NumPy array (np.asarray, np.array, assignment into an array; "
            "build arrays from traced values with np.stack or np.concatenate)")

    def __float__(self):
        raise _refuse_conversion("float()")

    def __int__(self):
        raise _refuse_conversion("int()")

    def __complex__(self):
        raise _refuse_conversion("complex()")

    def __bool__(self):  # control flow on a value keeps no derivative, so it drops none
        return bool(raw(self))

    def __setitem__(self, key, value):
        raise UnsupportedOperationError(
            "item assignment into a traced value (x[i] = ...) is an in-place update and is not supported; "
            "build the new array with np.where, np.concatenate or indexing instead"
        )

    # --- array attributes and methods, all routed through NumPy ------------------------
    shape = property(lambda self: np.shape(raw(self)))
    dtype = property(lambda self: raw(self).dtype)
    ndim = property(lambda self: np.ndim(raw(self)))
    size = property(lambda self: np.size(raw(self)))
    T = property(lambda self: np.transpose(self))

    def __len__(self):
        return len(raw(self))

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __getitem__(self, key):
        return dispatch(getitem, (self,), {"key": _index_key(key)})

    def reshape(self, *shape):
        return np.reshape(self, shape[0] if len(shape) == 1 else shape)

    def transpose(self, *axes):
        return np.transpose(self, (axes[0] if len(axes) == 1 else axes) or None)

    def sum(self, axis=None, keepdims=False):
        return np.sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        return np.mean(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims=False):
        return np.max(self, axis=axis, keepdims=keepdims)

    def min(self, axis=None, keepdims=False):
        return np.min(self, axis=axis, keepdims=keepdims)

    def ravel(self):
        return np.ravel(self)

    flatten = ravel

    def squeeze(self, axis=None):
        return np.squeeze(self, axis=axis)

    def dot(self, other):
        return np.dot(self, other)

    def astype(self, dtype):
        return astype(self, dtype)

    def __repr__(self):
        return f"{type(self).__name__}(level={self.trace.level}, value={self.value!r})"


def _index_key(key):
    """An index with its boxes unwrapped (indices are integers: no derivative) and boolean masks as integer arrays."""
    parts = key if isinstance(key, tuple) else (key,)
    out = []
    for part in parts:
        part = raw(part)
        if isinstance(part, list):
            part = np.asarray(part)
        if isinstance(part, np.ndarray) and part.dtype == bool:
            out.extend(np.nonzero(part))
        else:
            out.append(part)
    return tuple(out)


# --- primitives NumPy does not name: indexing, its transpose, and casting ---------------

def getitem(x, key):
    """``x[key]``: a primitive of its own (NumPy has no function for it)."""
    return x[key]


def is_basic_index(key: tuple) -> bool:
    """Slices, integers, None and Ellipsis only: no element can be picked twice."""
    return all(k is None or k is Ellipsis or isinstance(k, (slice, int, np.integer)) for k in key)


def index_add(g, key, shape):
    """Zeros of ``shape`` with ``g`` added at ``key`` (repeated indices add up): the transpose of ``x[key]``."""
    if isinstance(g, Box):
        return dispatch(index_add, (g,), {"key": key, "shape": shape})
    out = np.zeros(shape, dtype=g.dtype)
    if is_basic_index(key):
        out[key] = g
    else:
        np.add.at(out, key, g)
    return out


def astype(x, dtype):
    """``x`` cast to ``dtype``."""
    if isinstance(x, Box):
        return dispatch(astype, (x,), {"dtype": dtype})
    return np.asarray(x).astype(dtype, copy=False)
