"""Nested containers of arrays ("pytrees", as JAX calls them): tuples, lists, NamedTuples and dicts.

``grad``, ``value_and_grad``, ``jvp`` and ``vjp`` accept them as arguments and
outputs, so a network's parameters can be a list of arrays or a dict. Anything
else (an array, a number, a traced value, None) is a leaf. Dicts are walked in
sorted key order, as in JAX.
"""

from __future__ import annotations


def tree_flatten(tree) -> tuple[list, object]:
    """The leaves of ``tree`` from left to right, and a description of its structure for :func:`tree_unflatten`."""
    leaves = []

    def walk(node):
        if isinstance(node, (tuple, list)):
            return (type(node), None, [walk(child) for child in node])
        if isinstance(node, dict):
            keys = sorted(node)
            return (dict, keys, [walk(node[k]) for k in keys])
        leaves.append(node)
        return None

    return leaves, walk(tree)


def tree_unflatten(structure, leaves):
    """The tree of ``structure`` (from :func:`tree_flatten`) with ``leaves`` put in, left to right."""
    it = iter(leaves)

    def build(node):
        if node is None:
            return next(it)
        kind, keys, children = node
        built = [build(child) for child in children]
        if kind is dict:
            return dict(zip(keys, built))
        if issubclass(kind, tuple) and kind is not tuple and hasattr(kind, "_fields"):
            return kind(*built)
        return kind(built)

    return build(structure)


def tree_map(fn, tree):
    leaves, structure = tree_flatten(tree)
    return tree_unflatten(structure, [fn(leaf) for leaf in leaves])
