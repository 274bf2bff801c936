r"""Forward mode: every value carries a tangent (a dual number), pushed through each primitive by its JVP rule.

For a primitive :math:`y = p(x_1, \dots, x_k)` the trace computes the value and,
alongside it, :math:`\dot y = \sum_i \partial_i p(x)\, \dot x_i`, summing only
over the arguments that carry a tangent of this trace. One run gives one
directional derivative :math:`J \dot x` at about the cost of evaluating
:math:`f` (Griewank & Walther 2008, ch. 3: the tangent mode; Baydin et al.
2018, §3.1: dual numbers :math:`x + \dot x \varepsilon`, :math:`\varepsilon^2 = 0`).
"""

from __future__ import annotations

import numpy as np

from coursekit.ad.boxes import Box, astype, new_level


class Dual(Box):
    """A value and its tangent under one forward trace."""

    __slots__ = ("tangent",)

    def __init__(self, trace, value, tangent):
        self.trace = trace
        self.value = value
        self.tangent = tangent


class ForwardTrace:
    """One application of forward mode: a level and the rule that pushes tangents."""

    def __init__(self):
        self.level = new_level()

    def lift(self, value, tangent) -> Dual:
        return Dual(self, value, tangent)

    def lower(self, out):
        """(value, tangent) of an output; an output that never met this trace has tangent zero."""
        if isinstance(out, Dual) and out.trace is self:
            return out.value, out.tangent
        return out, np.zeros(np.shape(out), dtype=np.result_type(out))

    def process(self, prim, rule, args, params):
        values, tangents = [], []
        for a in args:
            mine = isinstance(a, Dual) and a.trace is self
            values.append(a.value if mine else a)
            tangents.append(a.tangent if mine else None)
        ans = (rule.impl or prim)(*values, **params)
        if rule.variadic:
            tangents = [np.zeros(np.shape(v), dtype=ans.dtype) if t is None else t for t, v in zip(tangents, values)]
            tangent = rule.jvp(tangents, ans, *values, **params)
        else:
            tangent = None
            for jvp, t in zip(rule.jvp, tangents):
                if t is None or jvp is None:
                    continue
                term = jvp(t, ans, *values, **params)
                tangent = term if tangent is None else tangent + term
            if tangent is None:  # only arguments without a derivative were traced
                return ans
        if tangent.shape != ans.shape:  # an argument broadcast against a larger one
            tangent = np.broadcast_to(tangent, ans.shape)
        if tangent.dtype != ans.dtype:  # e.g. a float32 argument combined with a float64 constant
            tangent = astype(tangent, ans.dtype)
        return Dual(self, ans, tangent)
