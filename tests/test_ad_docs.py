"""The examples in coursekit.ad's docstrings run and print what they say."""

import doctest
import importlib

import numpy as np
import pytest

MODULES = ["api", "boxes", "rules", "forward", "reverse", "special", "value", "graph", "trees"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"coursekit.ad.{name}")
    result = doctest.testmod(module, extraglobs={"np": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def test_public_surface():
    from coursekit import ad

    assert sorted(ad.__all__) == sorted([
        "grad", "value_and_grad", "jvp", "vjp", "jacfwd", "jacrev", "hessian", "hvp", "Value", "trace_graph",
        "draw_graph", "graph_table", "logsumexp", "softmax", "UnsupportedOperationError", "supported_operations",
    ])
    for name in ad.__all__:
        assert getattr(ad, name).__doc__, f"coursekit.ad.{name} has no docstring"
