"""The static answer policy (coursekit/grading/policy.py) on allowed and forbidden snippets."""

import nbformat
import pytest

from coursekit.grading.policy import check_source, describe
from coursekit.grading.preprocessors import HideHiddenTests, strip_hidden_tests

ALLOWED = [
    "import numpy as np",
    "import numpy\nimport math",
    "import numpy.linalg as la\nfrom numpy.linalg import norm",
    "from math import sqrt, pi",
    "def central_difference_gradient(f, x, h):\n"
    "    x = np.asarray(x, dtype=float)\n    g = np.zeros_like(x)\n"
    "    for k in np.ndindex(x.shape):\n        e = np.zeros_like(x)\n        e[k] = h\n"
    "        g[k] = (f(x + e) - f(x - e)) / (2 * h)\n    return g",
    "W = np.ones((3, 2))\nW[0, 1] = 5.0\nW[:, 0] += 1",
    "class Estimator:\n    def __init__(self, tau):\n        self.tau = tau\n"
    "    def __call__(self, f, x, u):\n        return (f(x + self.tau * u) - f(x)) / self.tau * u",
    "result = [x.shape for x in arrays]  # the type of the result: an array",
    "values = {'name': 1}\nprint(f'{values}')",
    "def broken(:\n    pass",  # a syntax error breaks only the student's own cell
    # a number-like class for forward or reverse mode: operators, reflected operators, repr
    "class Dual:\n    def __init__(self, primal, tangent=0.0):\n        self.primal = primal\n"
    "        self.tangent = tangent\n"
    "    def __add__(self, other):\n        other = other if isinstance(other, Dual) else Dual(other)\n"
    "        return Dual(self.primal + other.primal, self.tangent + other.tangent)\n"
    "    __radd__ = __add__\n"
    "    def __mul__(self, other):\n        return Dual(self.primal * other, self.tangent * other)\n"
    "    def __rmul__(self, other):\n        return self * other\n"
    "    def __neg__(self):\n        return -1.0 * self\n"
    "    def __sub__(self, other):\n        return self + (-other)\n"
    "    def __rsub__(self, other):\n        return other + (-self)\n"
    "    def __truediv__(self, other):\n        return self * other**-1\n"
    "    def __rtruediv__(self, other):\n        return other * self**-1\n"
    "    def __pow__(self, n):\n        return Dual(self.primal**n, n * self.primal**(n - 1) * self.tangent)\n"
    "    def __repr__(self):\n        return f'Dual({self.primal}, {self.tangent})'\n"
    "    def __str__(self):\n        return repr(self)",
    # a micrograd-style node accumulates into its parents and attaches its backward step
    "def mul(self, other):\n    out = Value(self.data * other.data, (self, other))\n"
    "    def backward_step():\n        self.grad += other.data * out.grad\n"
    "        other.grad += self.data * out.grad\n    out.backward_step = backward_step\n    return out",
    "for node in reversed(order):\n    node.backward_step()\nfor leaf in leaves:\n    leaf.grad = 0.0",
    "",
]

FORBIDDEN = [
    ("import os", "import", "'os'"),
    ("import subprocess", "import", "'subprocess'"),
    ("from os import path", "import", "'os'"),
    ("import importlib", "import", "'importlib'"),
    ("from . import something", "import", "'.'"),
    ("import scipy.optimize", "import", "'scipy.optimize'"),
    ("from numpy import *", "import", "star import"),
    ("from math import *", "import", "star import"),
    ("from numpy import load", "import", "'load'"),
    ("from numpy import testing as t", "import", "'testing'"),
    ("from numpy.lib import npyio", "import", "'numpy.lib'"),
    ("import numpy.testing", "import", "'numpy.testing'"),
    ("import coursekit", "coursekit", "coursekit"),
    ("from coursekit.fd import gradient", "coursekit", "coursekit"),
    ("import coursekit.zo as zo", "coursekit", "coursekit"),
    ("g = coursekit.fd.gradient(f, x)", "coursekit", "coursekit"),
    ("name = 'coursek' + 'it'\nmodule = 'coursekit.fd'", "coursekit", "string"),
    ("sys.modules['numpy'] = None", "name", "'sys'"),
    ("__import__('os')", "private", "__import__"),
    ("exec('x = 1')", "name", "'exec'"),
    ("eval('1 + 1')", "name", "'eval'"),
    ("code = compile('1', 'f', 'eval')", "name", "'compile'"),
    ("globals()['expected']", "name", "'globals'"),
    ("locals()", "name", "'locals'"),
    ("vars(np)['allclose'] = None", "name", "'vars'"),
    ("getattr(np, 'load')", "name", "'getattr'"),
    ("setattr(np, 'allclose', None)", "name", "'setattr'"),
    ("delattr(np, 'allclose')", "name", "'delattr'"),
    ("open('coursekit.py', 'w').write('')", "name", "'open'"),
    ("import builtins", "import", "'builtins'"),
    ("np.allclose = lambda *a, **k: True", "assignment", "np.allclose"),
    ("np.testing.assert_allclose = print", "assignment", "np.testing.assert_allclose"),
    ("t = np.linalg\nt.norm = abs", "assignment", "t.norm"),
    ("del np.linalg", "assignment", "np.linalg"),
    ("x.__class__", "private", "__class__"),
    ("f.func.__globals__", "private", "__globals__"),
    ("().__class__.__bases__[0].__subclasses__()", "private", "__subclasses__"),
    ("np._core", "private", "_core"),
    ("def __getattr__(name):\n    return 1", "private", "__getattr__"),
    ("try:\n    1 / 0\nexcept Exception as e:\n    frame = e.__traceback__.tb_frame.f_back",
     "name", "'tb_frame'"),
    ("def gen():\n    yield 1\ng = gen()\ng.gi_frame.f_back", "name", "'gi_frame'"),
    ("np.save('x.npy', x)", "name", "'save'"),
    ("np.savetxt('coursekit.py', ['import os'], fmt='%s')", "name", "'savetxt'"),
    ("data = np.load('answers.npy', allow_pickle=True)", "name", "'load'"),
    ("np.lib.format", "name", "'lib'"),
    ("np.ctypeslib", "name", "'ctypeslib'"),
    ("np.testing.extbuild", "name", "'testing'"),
    ("%pip install coursekit", "name", "magic"),
    ("!cat /etc/passwd", "name", "magic"),
    ("%run fake.py", "name", "magic"),
    ("get_ipython().run_cell('import os')", "name", "magic"),
    ("T = type('T', (object,), {})", "name", "'type'"),
    ("x = {'__class__': 1}", "private", "dunder"),
    ("breakpoint()", "name", "'breakpoint'"),
    # operators may be defined, not reached through another object
    ("add = x.__add__", "private", "__add__"),
    ("np.ndarray.__mul__", "private", "__mul__"),
    ("other.data = 2.0", "assignment", "other.data"),
    ("np.grad.x = 1", "assignment", "np.grad.x"),
    ("del leaf.grad", "assignment", "leaf.grad"),
    ("def __eq__(self, other):\n    return True", "private", "__eq__"),
    ("def __float__(self):\n    return 1.0", "private", "__float__"),
    ("class Evil:\n    __array_ufunc__ = None", "private", "__array_ufunc__"),
    ("def __getattribute__(self, name):\n    return 1", "private", "__getattribute__"),
]


@pytest.mark.parametrize("source", ALLOWED)
def test_allowed(source):
    assert check_source(source) == []


@pytest.mark.parametrize("source, kind, text", FORBIDDEN)
def test_forbidden(source, kind, text):
    violations = check_source(source)
    assert kind in {v.kind for v in violations}, violations
    assert any(text in line for line in describe(violations)), describe(violations)


def test_allow_list_is_configurable():
    assert check_source("import scipy", allowed_imports={"numpy", "scipy"}) == []
    assert check_source("import numpy", allowed_imports={"math"})[0].kind == "import"


def test_violations_name_their_lines():
    lines = describe(check_source("import numpy as np\n\nimport os\nnp.e = 3"))
    assert lines == ["line 3: imports 'os'",
                     "line 4: assigns to the attribute 'np.e' of an object it did not create"]


def test_hidden_tests_are_stripped_like_nbgrader():
    source = "visible()\n### BEGIN HIDDEN TESTS\nsecret(9011)\n### END HIDDEN TESTS\nafter()"
    assert strip_hidden_tests(source) == "visible()\nafter()"


def test_feedback_hides_hidden_code_and_traceback():
    cell = nbformat.v4.new_code_cell(
        "visible()\n    ### BEGIN HIDDEN TESTS\n    secret(9011)\n    ### END HIDDEN TESTS")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="printed by secret(9011)"),
        nbformat.v4.new_output("error", ename="AssertionError", evalue="wrong result",
                               traceback=["line 3: secret(9011)", "AssertionError: wrong result"]),
    ]
    cell, _ = HideHiddenTests().preprocess_cell(cell, {}, 0)
    assert "9011" not in cell.source and "hidden tests: not shown" in cell.source
    assert [o.output_type for o in cell.outputs] == ["error"]
    assert cell.outputs[0].traceback == ["AssertionError: wrong result"]
