r"""``Value``: micrograd's scalar API on coursekit's own reverse mode.

A ``Value`` is a reverse-mode :class:`~coursekit.ad.reverse.Node` holding one
float64 scalar, recorded by an always-open trace of level 0 (so any
transformation applied around it outranks it). Operators and the methods
below go through the same dispatch and the same rule table as arrays do;
``backward()`` runs the same reverse sweep and *adds* each node's adjoint
:math:`\partial\,\text{self} / \partial\,\text{node}` into its ``.grad``
(as micrograd and PyTorch do: reset with ``v.grad = 0.0`` between steps).

Reference: A. Karpathy, micrograd (2020), for the API.
"""

from __future__ import annotations

import operator

import numpy as np

from coursekit.ad.boxes import RULES, Box
from coursekit.ad.reverse import Node, ReverseTrace, backward_pass, topological_order


def _larger(x, y):
    return np.float64(x if x >= y or x != x else y)  # np.maximum on two scalars, NaN included


def _smaller(x, y):
    return np.float64(x if x <= y or x != x else y)


class _ScalarTrace(ReverseTrace):
    """The always-open trace of Values. Same rules and graph; binary arithmetic on two scalars
    uses Python's operators, which are several times faster than calling a ufunc on 0-d values."""

    _scalar = {np.add: operator.add, np.subtract: operator.sub, np.multiply: operator.mul,
               np.divide: operator.truediv, np.power: operator.pow, np.maximum: _larger, np.minimum: _smaller}

    def evaluate(self, prim, rule, values, params):
        return self._scalar.get(prim, rule.impl or prim)(*values, **params)


_NUMBERS = (int, float, np.float64)


def _operator(prim, reflected=False):
    """``self op other`` recorded directly by the scalar trace when both are scalars; else NumPy's dispatch."""
    rule = RULES[prim]

    def apply(self, other):
        if type(other) is Value or type(other) in _NUMBERS:
            args = (other, self) if reflected else (self, other)
            return _EAGER.process(prim, rule, args, {})
        return prim(other, self) if reflected else prim(self, other)

    apply.__name__ = f"__{'r' if reflected else ''}{prim.__name__}__"
    return apply


class Value(Node):
    """A scalar that records what is computed from it: ``.data``, ``.grad`` and ``.backward()``."""

    __slots__ = ("grad",)
    __hash__ = object.__hash__  # hashable by identity, as in micrograd (sets of Values in a topological sort)

    def __init__(self, data):
        if isinstance(data, Box):
            raise TypeError("Value(data) takes a number; combine Values with operators instead")
        if np.ndim(data) != 0:
            raise ValueError(f"Value holds one scalar, got shape {np.shape(data)}")
        self.trace, self.value, self.grad = _EAGER, np.float64(data), 0.0
        self.op, self.rule, self.inputs, self.params = None, None, (), None

    @classmethod
    def record(cls, trace, value, op=None, rule=None, inputs=(), params=None):
        node = cls.__new__(cls)
        node.trace, node.value, node.op, node.rule, node.inputs, node.params = trace, value, op, rule, inputs, params
        node.grad = 0.0
        return node

    def _apply(self, prim, *constants):
        if self.trace is _EAGER:  # straight to the trace, past NumPy's dispatch
            return _EAGER.process(prim, RULES[prim], (self, *constants), {})
        return prim(self, *constants)

    @property
    def data(self) -> float:
        return float(self.value)

    @data.setter
    def data(self, new):  # an optimizer step on a leaf: p.data -= lr * p.grad
        self.value = np.float64(new)

    def backward(self):
        """Add ``d self / d node`` into ``node.grad`` for every node ``self`` depends on (``self.grad += 1``)."""
        order = topological_order(self)
        adjoints = backward_pass(self, np.float64(1.0), order)
        for node in order:
            adjoint = adjoints.get(id(node))
            if adjoint is not None:
                node.grad += float(adjoint)

    __add__, __radd__ = _operator(np.add), _operator(np.add, reflected=True)
    __sub__, __rsub__ = _operator(np.subtract), _operator(np.subtract, reflected=True)
    __mul__, __rmul__ = _operator(np.multiply), _operator(np.multiply, reflected=True)
    __truediv__, __rtruediv__ = _operator(np.divide), _operator(np.divide, reflected=True)
    __pow__, __rpow__ = _operator(np.power), _operator(np.power, reflected=True)
    # micrograd's `c += 1` rebinds c to a new node; nothing is updated in place
    __iadd__, __isub__, __imul__, __itruediv__, __ipow__ = __add__, __sub__, __mul__, __truediv__, __pow__

    def __neg__(self):
        return _EAGER.process(np.negative, RULES[np.negative], (self,), {})

    def exp(self):
        return self._apply(np.exp)

    def log(self):
        return self._apply(np.log)

    def tanh(self):
        return self._apply(np.tanh)

    def relu(self):
        return self._apply(np.maximum, 0.0)

    def sin(self):
        return self._apply(np.sin)

    def cos(self):
        return self._apply(np.cos)

    def sqrt(self):
        return self._apply(np.sqrt)

    def __repr__(self):
        return f"Value(data={self.data}, grad={self.grad})"


_EAGER = _ScalarTrace(node_type=Value, level=0)
