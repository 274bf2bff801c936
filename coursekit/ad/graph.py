r"""The computational graph of a function, with its forward tangents and reverse adjoints, as a figure or a table.

:func:`trace_graph` evaluates ``f`` once under *both* modes, nested: forward
mode outside (each input carries the tangent :math:`\dot x`, by default
:math:`e_1`), reverse mode inside (each primitive becomes a node). Every node
:math:`v_i` therefore knows its value, its tangent :math:`\dot v_i =
\partial v_i / \partial x \cdot \dot x` (the forward run), and after one
reverse sweep from the output its adjoint :math:`\bar v_i = \partial y /
\partial v_i` (the reverse run). This is the evaluation trace of Griewank &
Walther (2008), §2.2-3.2, and the tables of Baydin et al. (2018), Tables 2-3.

Names follow the source: inputs take the parameter names of ``f``
(``w1``, ``w2``), intermediate nodes are ``v1, v2, ...`` in evaluation order.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from matplotlib.figure import Figure

from coursekit.ad.api import _input, _matching
from coursekit.ad.boxes import operation_name
from coursekit.ad.forward import ForwardTrace
from coursekit.ad.reverse import Node, ReverseTrace, backward_pass, topological_order


@dataclass(frozen=True)
class GraphNode:
    """One node: ``id`` (its position), ``name``, ``op`` (``"input"`` or a primitive's name), the ids of its
    ``inputs``, and its ``value``, forward ``tangent`` and reverse ``adjoint``."""

    id: int
    name: str
    op: str
    inputs: tuple[int, ...]
    value: np.ndarray
    tangent: np.ndarray
    adjoint: np.ndarray


@dataclass(frozen=True)
class Graph:
    """The nodes of a traced function in evaluation order (inputs first); ``output`` is the id of the result."""

    nodes: tuple[GraphNode, ...]
    output: int


class GraphRow(NamedTuple):
    name: str
    op: str
    value: np.ndarray
    tangent: np.ndarray
    adjoint: np.ndarray


def _input_names(f, count):
    try:
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        params = [p for p in inspect.signature(f).parameters.values() if p.kind in positional]
    except (TypeError, ValueError):
        params = []
    if len(params) >= count:
        return [p.name for p in params[:count]]
    return [f"x{i + 1}" for i in range(count)]


def trace_graph(f: Callable, *args, tangents: Sequence | None = None) -> Graph:
    r"""Record ``f(*args)`` as a graph with every node's value, tangent and adjoint.

    ``tangents``: one per argument (default :math:`e_1`: 1 in the first
    element of the first argument, 0 elsewhere), pushed through a real
    forward-mode run. Adjoints come from a real reverse sweep seeded with ones
    (for a scalar output: :math:`\bar y = 1`, so :math:`\bar x = \nabla f`).

    >>> g = trace_graph(lambda w1, w2: w2 * np.log(w1) + np.sqrt(w2 * np.log(w1)), 2.0, 3.0)
    >>> [n.op for n in g.nodes]
    ['input', 'input', 'log', 'multiply', 'log', 'multiply', 'sqrt', 'add']
    """
    primals = [_input(a, "trace_graph", f"argument {i}") for i, a in enumerate(args)]
    if tangents is None:
        tangents = [np.zeros_like(p) for p in primals]
        if primals and primals[0].size:
            tangents[0].flat[0] = 1
    if len(tangents) != len(primals):
        raise ValueError(f"trace_graph: {len(primals)} arguments but {len(tangents)} tangents")
    tangents = [_matching(t, p, "trace_graph", f"tangent {i}") for i, (t, p) in enumerate(zip(tangents, primals))]

    forward = ForwardTrace()  # outside: tangents
    reverse = ReverseTrace()  # inside: the graph
    leaves = [reverse.leaf(forward.lift(p, t)) for p, t in zip(primals, tangents)]
    out = f(*leaves)
    if not (isinstance(out, Node) and out.trace is reverse):
        raise ValueError("trace_graph: the output of f does not depend on its arguments, so there is no graph to draw")

    order = topological_order(out)
    seen = {id(leaf) for leaf in leaves}
    order = leaves + [node for node in order if id(node) not in seen]
    value = forward.lower(out.value)[0]
    adjoints = backward_pass(out, np.ones(np.shape(value), dtype=np.asarray(value).dtype), order)

    ids = {id(node): k for k, node in enumerate(order)}
    names = _input_names(f, len(leaves)) + [f"v{k}" for k in range(1, len(order) - len(leaves) + 1)]
    nodes = []
    for k, node in enumerate(order):
        value, tangent = forward.lower(node.value)
        adjoint = adjoints.get(id(node))
        adjoint = np.zeros_like(value) if adjoint is None else forward.lower(adjoint)[0]
        op = "input" if node.op is None else operation_name(node.op).removeprefix("numpy.")
        nodes.append(GraphNode(k, names[k], op, tuple(ids[id(p)] for p in node.parents), value, tangent, adjoint))
    return Graph(tuple(nodes), ids[id(out)])


def graph_table(graph: Graph) -> list[GraphRow]:
    """One row per node, in evaluation order: ``(name, op, value, tangent, adjoint)``.

    ``op`` names the operation and its inputs, e.g. ``multiply(w2, v1)``.
    The rows are NamedTuples, so ``pandas.DataFrame(graph_table(g))`` has named columns.
    """
    rows = []
    for node in graph.nodes:
        op = node.op if node.op == "input" else f"{node.op}({', '.join(graph.nodes[i].name for i in node.inputs)})"
        rows.append(GraphRow(node.name, op, node.value, node.tangent, node.adjoint))
    return rows


_SYMBOLS = {"add": "+", "subtract": "−", "multiply": "×", "divide": "÷", "negative": "−", "power": "^",
            "matmul": "@"}
_LABELS = {"value": "", "tangent": "\u0307", "adjoint": "\u0304"}  # v, v with dot above, v with bar above


def _short(x) -> str:
    x = np.asarray(x)
    if x.size == 1:
        return f"{x.item():.4g}"
    if x.size <= 3:
        return "[" + ", ".join(f"{v:.3g}" for v in x.ravel()) + "]"
    return f"array{x.shape}"


def _layers(graph: Graph) -> list[int]:
    """Column of each node: one right of its last input; an input sits just left of its first user."""
    layer = []
    for node in graph.nodes:  # evaluation order: inputs come before their users
        layer.append(0 if not node.inputs else 1 + max(layer[i] for i in node.inputs))
    first_use = {}
    for node in graph.nodes:
        for i in node.inputs:
            first_use[i] = min(first_use.get(i, layer[node.id]), layer[node.id])
    for node in graph.nodes:
        if not node.inputs:
            layer[node.id] = max(first_use.get(node.id, 1) - 1, 0)
    return layer


def draw_graph(graph: Graph, ax=None, show: Sequence[str] = ("value", "tangent", "adjoint")) -> Figure:
    r"""Draw ``graph`` left to right: a node one column right of its last input, an input just left of its first use.

    Each node shows ``name = op`` and, as ``show`` asks, its value :math:`v`,
    tangent :math:`\dot v` and adjoint :math:`\bar v`. Draws into ``ax`` if
    given (and returns its figure); otherwise returns a new
    :class:`matplotlib.figure.Figure` (pyplot's state is never touched).
    """
    unknown = set(show) - set(_LABELS)
    if unknown:
        raise ValueError(f"show may contain {', '.join(_LABELS)}; got {sorted(unknown)}")
    layer = _layers(graph)
    columns = max(layer) + 1
    per_column = [layer.count(c) for c in range(columns)]
    if ax is None:
        height = 0.4 + 0.8 * max(per_column) * (1 + 0.25 * len(show))
        fig = Figure(figsize=(1.9 * columns + 0.4, height), layout="tight")
        ax = fig.add_subplot()
    fig = ax.figure

    # rows: inputs in argument order; every later column sorted by the mean row of the node's inputs
    # (the barycentre heuristic of Sugiyama et al. 1981), which removes most crossings
    y = [0.0] * len(graph.nodes)
    for c in range(columns):
        members = [n for n in graph.nodes if layer[n.id] == c]
        if c:
            members.sort(key=lambda n: -sum(y[i] for i in n.inputs) / len(n.inputs) if n.inputs else -np.inf)
        for rank, node in enumerate(members):
            y[node.id] = (len(members) - 1) / 2 - rank

    boxes = []
    for node in graph.nodes:
        op = "input" if node.op == "input" else _SYMBOLS.get(node.op, node.op)
        lines = [f"{node.name} = {op}" if node.op != "input" else f"{node.name} (input)"]
        for field in show:
            lines.append(f"v{_LABELS[field]} = {_short(getattr(node, field))}")
        is_output = node.id == graph.output
        style = dict(boxstyle="round,pad=0.4", facecolor="#fde9c9" if is_output else
                     ("#dce9f7" if node.op == "input" else "white"), edgecolor="0.3")
        boxes.append(ax.text(layer[node.id], y[node.id], "\n".join(lines), ha="center", va="center", fontsize=8,
                             family="monospace", bbox=style, zorder=3))

    for node in graph.nodes:
        for i in node.inputs:
            skips = layer[node.id] - layer[i] > 1  # an edge over a column bends, so as not to run through its boxes
            ax.annotate("", xy=boxes[node.id].get_position(), xytext=boxes[i].get_position(),
                        arrowprops=dict(arrowstyle="-|>", color="0.35", shrinkA=0, shrinkB=0,
                                        connectionstyle=f"arc3,rad={-0.3 if skips else 0}",
                                        patchA=boxes[i].get_bbox_patch(), patchB=boxes[node.id].get_bbox_patch()),
                        zorder=4)  # after the boxes, whose patches then have their final place
    ax.set_xlim(-0.6, columns - 0.4)
    height = max(per_column)
    ax.set_ylim(-(height - 1) / 2 - 0.6, (height - 1) / 2 + 0.6)
    ax.set_axis_off()
    return fig
