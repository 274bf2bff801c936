r"""The functional API, with JAX's names and argument conventions.

- ``jvp(f, primals, tangents)`` :math:`\to (f(x), J\dot x)`: one forward-mode run.
- ``vjp(f, *primals)`` :math:`\to (f(x), \bar y \mapsto \bar y^\top J)`: one recording, any number of reverse sweeps.
- ``grad`` / ``value_and_grad``: :math:`\nabla f(x)` of a scalar :math:`f` by one reverse sweep seeded with 1.
- ``jacfwd``: :math:`J` column by column (one JVP per input element);
  ``jacrev``: row by row (one VJP per output element). Shape ``out.shape + in.shape``.
- ``hessian = jacfwd(jacrev(f))`` and ``hvp(f, x, v) = jvp(grad(f), (x,), (v,))[1]``: forward over
  reverse, :math:`H v` for about the cost of a few gradients (Pearlmutter 1994).

``argnums`` (an int or a tuple of ints) picks the arguments to differentiate;
a tuple gives a tuple of results. Inputs must be floating point; arrays keep
their dtype (float32 stays float32). ``grad``, ``value_and_grad``, ``jvp`` and
``vjp`` also take nested tuples, lists and dicts of arrays (JAX's pytrees, e.g.
a list of weight matrices) and answer in the same structure; ``jacfwd``,
``jacrev``, ``hessian`` and ``hvp`` take arrays.

References: JAX's ``jax.grad``/``jax.jvp``/``jax.vjp`` documentation and autodidax;
Griewank & Walther, *Evaluating Derivatives*, 2nd ed. (2008); Baydin et al.,
JMLR 18 (2018); Pearlmutter, "Fast exact multiplication by the Hessian",
Neural Computation 6 (1994).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from coursekit.ad.boxes import Box, raw
from coursekit.ad.forward import ForwardTrace
from coursekit.ad.reverse import Node, ReverseTrace, backward_pass, topological_order
from coursekit.ad.trees import tree_flatten, tree_unflatten


def _input(x, who: str, what: str = "input"):
    if isinstance(x, Box):
        return x
    array = np.asarray(x)
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"{who} differentiates floating-point values only; {what} has dtype {array.dtype}")
    return array


def _dtype(x):
    return np.asarray(raw(x)).dtype


def _zeros_like(x):
    return np.zeros(np.shape(raw(x)), dtype=_dtype(x))


def _result(x):
    """A plain result handed to the user: never a read-only broadcast view of an internal array."""
    if isinstance(x, np.ndarray) and not x.flags.writeable:
        return np.array(x)
    return x


def _matching(value, primal, who: str, what: str):
    """``value`` as an array of ``primal``'s shape and dtype (Python numbers take the primal's dtype)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = np.asarray(value, dtype=_dtype(primal))
    elif not isinstance(value, Box):
        value = np.asarray(value)
    if np.shape(raw(value)) != np.shape(raw(primal)):
        raise ValueError(f"{who}: {what} has shape {np.shape(raw(value))} but its primal has shape "
                         f"{np.shape(raw(primal))}; they must match")
    if _dtype(value) != _dtype(primal):
        raise TypeError(f"{who}: {what} has dtype {_dtype(value)} but its primal has dtype {_dtype(primal)}; "
                        "they must match")
    return value


def jvp(f: Callable, primals, tangents):
    r"""Forward mode: ``(f(*primals), J @ tangents)``, the derivative of :math:`t \mapsto f(x + t\dot x)` at 0.

    ``primals`` and ``tangents`` are tuples (or lists) of the same structure;
    each tangent must have its primal's shape and dtype. Arguments and outputs
    may be arrays or nested tuples, lists and dicts of arrays; the tangent
    output has the structure of the output.

    >>> jvp(np.sin, (0.0,), (2.0,))   # (sin 0, cos 0 * 2)
    (np.float64(0.0), np.float64(2.0))
    """
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError("jvp(f, primals, tangents): primals and tangents must be tuples, e.g. jvp(f, (x,), (v,))")
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    primal_leaves, structure = tree_flatten(tuple(primals))
    tangent_leaves, tangent_structure = tree_flatten(tuple(tangents))
    if tangent_structure != structure:
        raise ValueError("jvp: the tangents must be nested like the primals (same tuples, lists and dicts)")
    primal_leaves = [_input(p, "jvp", f"primal {i}") for i, p in enumerate(primal_leaves)]
    tangent_leaves = [_matching(t, p, "jvp", f"tangent {i}")
                      for i, (t, p) in enumerate(zip(tangent_leaves, primal_leaves))]
    trace = ForwardTrace()
    out = f(*tree_unflatten(structure, [trace.lift(p, t) for p, t in zip(primal_leaves, tangent_leaves)]))
    out_leaves, out_structure = tree_flatten(out)
    pairs = [trace.lower(o) for o in out_leaves]
    return (tree_unflatten(out_structure, [_result(v) for v, _ in pairs]),
            tree_unflatten(out_structure, [_result(t) for _, t in pairs]))


def _record(f: Callable, primal_leaves, structure):
    """Run ``f`` on the primals (``structure`` with ``primal_leaves``) under a new reverse trace.

    Returns the leaf nodes, the output's leaves (plain values), their nodes
    (None for an output that never met the trace) and the output's structure.
    """
    trace = ReverseTrace()
    leaves = [trace.leaf(p) for p in primal_leaves]
    out_leaves, out_structure = tree_flatten(f(*tree_unflatten(structure, leaves)))
    nodes = [o if isinstance(o, Node) and o.trace is trace else None for o in out_leaves]
    values = [o.value if n is not None else o for o, n in zip(out_leaves, nodes)]
    return leaves, values, nodes, out_structure


def _leaf_results(leaves, primals, adjoints):
    """The adjoint of every leaf; zeros for a leaf the output does not depend on."""
    return [_result(adjoints[id(leaf)]) if id(leaf) in adjoints else _zeros_like(p) for leaf, p in zip(leaves, primals)]


def vjp(f: Callable, *primals):
    r"""Reverse mode: ``(f(*primals), vjp_fn)`` with ``vjp_fn(cotangent) = cotangent^T J``, one tuple entry per primal.

    ``f`` runs once, recording its graph; every call of ``vjp_fn`` is one
    reverse sweep over that graph. Arguments and outputs may be arrays or
    nested tuples, lists and dicts of arrays; the cotangent has the output's
    structure, shapes and dtypes.

    >>> y, vjp_fn = vjp(lambda x: x**2, 3.0)
    >>> vjp_fn(1.0)
    (np.float64(6.0),)
    """
    primal_leaves, structure = tree_flatten(primals)
    primal_leaves = [_input(p, "vjp", f"primal {i}") for i, p in enumerate(primal_leaves)]
    leaves, values, nodes, out_structure = _record(f, primal_leaves, structure)
    leaf_ids = {id(leaf) for leaf in leaves}
    orders = {}

    def vjp_fn(cotangent):
        cotangents, ct_structure = tree_flatten(cotangent)
        if ct_structure != out_structure:
            raise TypeError("vjp_fn: the cotangent must be nested like f's output (same tuples, lists and dicts)")
        totals = {}
        for k, (node, value, ct) in enumerate(zip(nodes, values, cotangents)):
            ct = _matching(ct, value, "vjp_fn", f"cotangent {k}" if len(values) > 1 else "the cotangent")
            if node is None:
                continue
            if k not in orders:
                orders[k] = topological_order(node)
            for key, a in backward_pass(node, ct, orders[k], keep=leaf_ids).items():
                totals[key] = a if key not in totals else totals[key] + a
        return tree_unflatten(structure, _leaf_results(leaves, primal_leaves, totals))

    return tree_unflatten(out_structure, [_result(v) for v in values]), vjp_fn


def _argnums(argnums, num_args: int) -> tuple:
    nums = tuple(argnums) if isinstance(argnums, (tuple, list)) else (argnums,)
    for n in nums:
        if not isinstance(n, (int, np.integer)) or not -num_args <= n < num_args:
            raise ValueError(f"argnums={argnums!r} does not name an argument of a call with {num_args} "
                             "positional arguments")
    return tuple(int(n) % num_args for n in nums)


def _with(f, args, nums):
    """``f`` as a function of the arguments in ``nums`` only, the others fixed."""
    def partial_f(*chosen):
        full = list(args)
        for i, x in zip(nums, chosen):
            full[i] = x
        return f(*full)
    return partial_f


def value_and_grad(f: Callable, argnums: int | tuple = 0) -> Callable:
    r"""``(f(*args), ∇f)``: the value and the gradient with respect to ``args[argnums]`` in one reverse sweep.

    ``f`` must return a real scalar (shape ``()``). The gradient is
    :math:`\bar y^\top J` with :math:`\bar y = 1`. A tuple ``argnums`` gives a
    tuple of gradients.
    """
    def value_and_grad_f(*args):
        nums = _argnums(argnums, len(args))
        primal_leaves, structure = tree_flatten(tuple(args[i] for i in nums))
        primal_leaves = [_input(p, "grad", "an argument") for p in primal_leaves]
        leaves, values, nodes, out_structure = _record(_with(f, args, nums), primal_leaves, structure)
        value = values[0]
        if out_structure is not None or np.shape(raw(value)) != ():
            shape = "a container" if out_structure is not None else f"shape {np.shape(raw(value))}"
            raise TypeError(f"grad requires f to return a scalar (shape ()), but it returned {shape}; "
                            "use jacrev, jacfwd or vjp for non-scalar outputs")
        if not np.issubdtype(_dtype(value), np.floating):
            raise TypeError(f"grad requires a real floating-point output, got dtype {_dtype(value)}")
        adjoints = {}
        if nodes[0] is not None:  # one sweep only, so the graph is released as it is walked
            seed = np.ones((), dtype=_dtype(value))
            adjoints = backward_pass(nodes[0], seed, keep={id(leaf) for leaf in leaves}, consume=True)
        grads = tree_unflatten(structure, _leaf_results(leaves, primal_leaves, adjoints))
        return _result(value), (grads if isinstance(argnums, (tuple, list)) else grads[0])

    return value_and_grad_f


def grad(f: Callable, argnums: int | tuple = 0) -> Callable:
    r"""The gradient :math:`\nabla f` of a scalar ``f`` with respect to ``args[argnums]``, by reverse mode.

    >>> grad(lambda x: np.sum(x**2))(np.array([1.0, 2.0]))
    array([2., 4.])
    """
    def grad_f(*args):
        return value_and_grad(f, argnums)(*args)[1]

    return grad_f


def _basis(x):
    """The unit vectors of ``x``'s space, shape ``(x.size,) + x.shape``."""
    shape = np.shape(raw(x))
    n = int(np.prod(shape))
    return np.eye(n, dtype=_dtype(x)).reshape((n,) + shape)


def jacfwd(f: Callable, argnums: int | tuple = 0) -> Callable:
    r"""The Jacobian by forward mode, one JVP per input element: shape ``f(x).shape + x.shape``.

    Column :math:`k` is :math:`J e_k`. Cheaper than :func:`jacrev` when there are fewer inputs than outputs.
    """
    def jacobian(*args):
        nums = _argnums(argnums, len(args))
        jacobians = []
        for i in nums:
            x = _input(args[i], "jacfwd", f"argument {i}")
            f_i = _with(f, args, (i,))
            columns = [jvp(f_i, (x,), (e,))[1] for e in _basis(x)]
            out_shape = np.shape(raw(columns[0])) if columns else np.shape(raw(f_i(x)))
            stacked = np.stack(columns, axis=-1) if columns else np.zeros(out_shape + (0,), _dtype(x))
            jacobians.append(_result(np.reshape(stacked, out_shape + np.shape(raw(x)))))
        return tuple(jacobians) if isinstance(argnums, (tuple, list)) else jacobians[0]

    return jacobian


def jacrev(f: Callable, argnums: int | tuple = 0) -> Callable:
    r"""The Jacobian by reverse mode, one VJP per output element: shape ``f(x).shape + x.shape``.

    Row :math:`a` is :math:`e_a^\top J`. Cheaper than :func:`jacfwd` when there are fewer outputs than inputs.
    """
    def jacobian(*args):
        nums = _argnums(argnums, len(args))
        chosen = [_input(args[i], "jacrev", f"argument {i}") for i in nums]
        out, vjp_fn = vjp(_with(f, args, nums), *chosen)
        out_shape = np.shape(raw(out))
        rows = [vjp_fn(e) for e in _basis(out)]
        jacobians = []
        for j, x in enumerate(chosen):
            stacked = np.stack([row[j] for row in rows]) if rows else np.zeros((0,) + np.shape(raw(x)), _dtype(x))
            jacobians.append(_result(np.reshape(stacked, out_shape + np.shape(raw(x)))))
        return tuple(jacobians) if isinstance(argnums, (tuple, list)) else jacobians[0]

    return jacobian


def hessian(f: Callable, argnums: int | tuple = 0) -> Callable:
    r"""The Hessian :math:`\partial^2 f / \partial x_i \partial x_j` as ``jacfwd(jacrev(f))``: forward over reverse.

    Shape ``x.shape + x.shape`` for a scalar ``f``. A tuple ``argnums`` gives
    the blocks as a nested tuple, ``H[i][j]`` for arguments ``argnums[i]`` and ``argnums[j]``.
    """
    if not isinstance(argnums, (tuple, list)):
        return jacfwd(jacrev(f, argnums), argnums)

    def blocks(*args):
        return tuple(tuple(jacfwd(jacrev(f, i), j)(*args) for j in argnums) for i in argnums)

    return blocks


def hvp(f: Callable, x, v):
    r"""The Hessian-vector product :math:`H(x)\,v = \frac{d}{dt} \nabla f(x + t v)\big|_{t=0}`: ``jvp`` of ``grad``.

    Forward over reverse: the reverse sweep of ``grad(f)`` runs on dual
    numbers, so it costs a small multiple of one gradient and never forms
    :math:`H` (Pearlmutter 1994).
    """
    return jvp(grad(f), (x,), (v,))[1]
