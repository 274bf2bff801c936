r"""Reverse mode: record a graph of primitives, then walk it backwards with the VJP rules.

The forward sweep evaluates :math:`f` and records, for every primitive, its
inputs and output (a *node*). The reverse sweep starts from a cotangent
:math:`\bar y` on the output and visits the nodes in reverse topological
order, adding :math:`\bar x_i \mathrel{+}= J_i^\top \bar v` into each input:

.. math::

    \bar v_j = \sum_{i:\, j \prec i} \bar v_i \, \frac{\partial v_i}{\partial v_j}.

One sweep gives :math:`\bar y^\top J` (a whole gradient for a scalar :math:`f`)
at a small constant multiple of the cost of :math:`f` (the cheap gradient
principle), paid for by keeping every intermediate value (Griewank & Walther
2008, ch. 3-4; Baydin et al. 2018, §3.2). The topological sort is iterative,
so graphs of any depth stay clear of Python's recursion limit.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from coursekit.ad.boxes import Box, astype, new_level


class Node(Box):
    """A recorded value: the primitive ``op`` (with its ``rule``) applied to ``inputs`` with ``params``.

    ``inputs`` are the arguments as given: nodes of the same trace (the
    ``parents``) and constants. A leaf has ``op = None`` and no inputs.
    """

    __slots__ = ("op", "rule", "inputs", "params")

    @classmethod
    def record(cls, trace, value, op=None, rule=None, inputs=(), params=None):
        node = cls.__new__(cls)
        node.trace, node.value, node.op, node.rule, node.inputs, node.params = trace, value, op, rule, inputs, params
        return node

    @property
    def parents(self) -> list:
        trace = self.trace
        return [a for a in self.inputs if isinstance(a, Node) and a.trace is trace]


class ReverseTrace:
    """One application of reverse mode: a level, and the node type it records (Value for the scalar API)."""

    def __init__(self, node_type=Node, level=None):
        self.level = new_level() if level is None else level
        self.node_type = node_type

    def evaluate(self, prim, rule, values, params):
        return (rule.impl or prim)(*values, **params)

    def leaf(self, value) -> Node:
        return self.node_type.record(self, value)

    def process(self, prim, rule, args, params):
        values, differentiable = [], False
        for i, a in enumerate(args):
            if isinstance(a, Node) and a.trace is self:
                values.append(a.value)
                differentiable = differentiable or rule.variadic or rule.vjp[i] is not None
            else:
                values.append(a)
        ans = self.evaluate(prim, rule, values, params)
        if not differentiable:
            return ans
        # the node keeps the argument tuple itself: one object fewer per operation for the garbage collector
        return self.node_type.record(self, ans, prim, rule, tuple(args), params)


def topological_order(root) -> list:
    """Nodes reachable from ``root``, every node after all its parents (depth-first, without recursion)."""
    order, seen = [], {id(root)}
    stack = [(root, iter(root.inputs))]
    while stack:
        node, inputs = stack[-1]
        for a in inputs:
            if isinstance(a, Node) and a.trace is node.trace and id(a) not in seen:
                seen.add(id(a))
                stack.append((a, iter(a.inputs)))
                break
        else:
            stack.pop()
            order.append(node)
    return order


def _checked(contribution, value, op):
    """The contribution to an input's adjoint, in the input's dtype; a rule that got the shape wrong is a bug."""
    if contribution.shape != value.shape:
        raise AssertionError(f"the VJP rule of {op} returned shape {contribution.shape} "
                             f"for an input of shape {value.shape}")
    if contribution.dtype != value.dtype:  # e.g. a float32 input combined with a float64 constant
        contribution = astype(contribution, value.dtype)
    return contribution


def backward_pass(root, seed, order=None, keep=None, consume=False) -> dict:
    """Adjoints from one reverse sweep, starting from ``seed`` at ``root``; keyed by ``id(node)``.

    ``keep``: the ids of the nodes whose adjoints to return (default: all). The
    others are dropped as soon as they have been passed on, so their memory is
    reused by the rest of the sweep. ``consume``: the graph is swept only once,
    so each node's values are released as soon as its rule has run (a lower
    peak of memory, and fresh memory that the operating system need not supply).
    """
    if order is None:
        order = topological_order(root)
    adjoints = {id(root): seed}
    get = adjoints.get
    for node in reversed(order):
        g = get(id(node)) if keep is None or id(node) in keep else adjoints.pop(id(node), None)
        if g is None or not node.inputs:
            continue
        trace, rule, inputs = node.trace, node.rule, node.inputs
        values = [a.value if isinstance(a, Node) and a.trace is trace else a for a in inputs]
        for i, parent in enumerate(inputs):
            if not (isinstance(parent, Node) and parent.trace is trace):
                continue
            vjp = partial(rule.vjp, i) if rule.variadic else rule.vjp[i]
            if vjp is None:
                continue
            contribution = vjp(g, node.value, *values, **node.params)
            value = values[i]
            if type(contribution) is not type(value) or type(value) is not np.float64:  # 0-d float64: nothing to check
                contribution = _checked(contribution, value, node.op)
            key = id(parent)
            previous = get(key)
            adjoints[key] = contribution if previous is None else previous + contribution
        del g, values
        if consume:
            node.inputs, node.params, node.value = (), None, None
    return adjoints
