"""The reference answer comes from a fresh interpreter that in-process patches cannot reach."""

import functools

import numpy as np
import pytest

import coursekit.fd
from coursekit.grading import checks
from coursekit.grading.reference import reference, reference_many
from coursekit.grading.testfunctions import quadratic, quadratic_gradient


def test_reference_ignores_patches_in_the_calling_process(monkeypatch):
    f = functools.partial(quadratic, A=np.diag([1.0, 2.0, 3.0]), b=np.ones(3))
    x = np.array([1.0, -1.0, 0.5])
    monkeypatch.setattr(coursekit.fd, "gradient", lambda *args, **kwargs: np.zeros(3))
    got = reference("coursekit.fd.gradient", f, x, "central", step=1e-4)
    np.testing.assert_allclose(got, quadratic_gradient(x, f.keywords["A"], f.keywords["b"]), rtol=1e-8)


def test_reference_only_runs_coursekit_functions():
    with pytest.raises(ValueError):
        reference_many("os.system", [(("true",), {})])


def test_a_cheating_answer_fails_even_when_it_returns_the_expected_shape():
    def forward(f, x, h):
        g = np.zeros_like(x)
        for k in np.ndindex(x.shape):
            e = np.zeros_like(x)
            e[k] = h
            g[k] = (f(x + e) - f(x)) / h
        return g
    with pytest.raises(AssertionError, match="central_difference_gradient"):
        checks.check_central_difference(forward, shapes=[(3,)], seed=0)


def test_answers_get_copies_so_they_cannot_corrupt_the_reference():
    def vandal(f, x, h):
        x[...] = 0.0
        return np.zeros_like(x)
    with pytest.raises(AssertionError, match="wrong result"):
        checks.check_central_difference(vandal, shapes=[(4,)], seed=0)
