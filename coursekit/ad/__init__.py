r"""coursekit.ad: forward- and reverse-mode automatic differentiation of plain NumPy code.

Write a function with NumPy; differentiate it with JAX's API::

    import numpy as np
    from coursekit import ad

    def loss(W, x):
        return np.mean(np.tanh(x @ W) ** 2)

    ad.grad(loss)(W, x)                      # reverse mode
    ad.jvp(loss, (W, x), (V, np.zeros_like(x)))  # forward mode
    ad.hvp(lambda W: loss(W, x), W, V)       # forward over reverse

How it works, in one paragraph: the arguments are wrapped in *boxes*, which
NumPy hands every operation applied to them (``__array_ufunc__``,
``__array_function__``). Each operation is looked up in one table of rules
(its JVP and VJP); forward mode pushes tangents through it at once, reverse
mode records it in a graph that is walked backwards afterwards. Every
transformation has its own level; the box of the highest level handles an
operation and sees lower-level boxes as constants, so transformations nest
(``hessian = jacfwd(jacrev(f))``) without mixing their perturbations.

Modules, in reading order:

- :mod:`coursekit.ad.boxes`    traced values in NumPy's dispatch; levels for nesting
- :mod:`coursekit.ad.rules`    the rule table: JVP and VJP of every primitive
- :mod:`coursekit.ad.forward`  forward mode (dual numbers)
- :mod:`coursekit.ad.reverse`  reverse mode (a graph and its reverse sweep)
- :mod:`coursekit.ad.api`      grad, value_and_grad, jvp, vjp, jacfwd, jacrev, hessian, hvp
- :mod:`coursekit.ad.trees`    nested tuples, lists and dicts of arrays as arguments (JAX's pytrees)
- :mod:`coursekit.ad.special`  stable logsumexp and softmax
- :mod:`coursekit.ad.value`    micrograd's scalar ``Value`` on the same reverse mode
- :mod:`coursekit.ad.graph`    computational graphs as figures and tables

References: Griewank & Walther, *Evaluating Derivatives*, 2nd ed. (SIAM 2008);
Baydin, Pearlmutter, Radul & Siskind, "Automatic differentiation in machine
learning: a survey", JMLR 18 (2018); JAX's autodidax for the API conventions.
"""

from coursekit.ad import rules as _rules  # noqa: F401  (fills the rule table)
from coursekit.ad.api import grad, hessian, hvp, jacfwd, jacrev, jvp, value_and_grad, vjp
from coursekit.ad.boxes import UnsupportedOperationError, supported_operations
from coursekit.ad.graph import draw_graph, graph_table, trace_graph
from coursekit.ad.special import logsumexp, softmax
from coursekit.ad.value import Value

__all__ = [
    "grad",
    "value_and_grad",
    "jvp",
    "vjp",
    "jacfwd",
    "jacrev",
    "hessian",
    "hvp",
    "Value",
    "trace_graph",
    "draw_graph",
    "graph_table",
    "logsumexp",
    "softmax",
    "UnsupportedOperationError",
    "supported_operations",
]
