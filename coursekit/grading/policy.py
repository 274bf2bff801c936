"""The static rules for code a student writes in an exercise notebook.

Checked outside the student's kernel, on the syntax tree of each cell (after
IPython turns magics into ``get_ipython()`` calls, so ``%run`` and ``!cmd`` are
caught too). An answer may only import from an allow-list (numpy and math by
default) and may not reach the reference implementation, the import machinery,
the interpreter's internals or the file system, nor change attributes of
objects it did not create.
"""

import ast
import re
from dataclasses import dataclass

from IPython.core.inputtransformer2 import TransformerManager

ALLOWED_IMPORTS = frozenset({"numpy", "math"})

# names that give access to the import system, the interpreter, the kernel or files
FORBIDDEN_NAMES = frozenset({
    "sys", "os", "subprocess", "importlib", "builtins", "__import__", "exec", "eval",
    "compile", "globals", "locals", "vars", "getattr", "setattr", "delattr", "open",
    "input", "breakpoint", "get_ipython", "type", "memoryview", "modules",
})
# numpy attributes that read or write files, load native code or build extensions
FORBIDDEN_ATTRIBUTES = frozenset({
    "load", "save", "savez", "savez_compressed", "savetxt", "loadtxt", "genfromtxt",
    "fromfile", "tofile", "memmap", "DataSource", "ctypeslib", "ctypes", "f2py",
    "distutils", "testing", "lib",
})
# The operators of a number-like class (a Dual or Value in the AD exercises). An
# answer may define them and name them bare in its class body (``__radd__ = __add__``):
# they only run when the class's own objects meet in arithmetic.
ARITHMETIC_METHODS = frozenset({
    "__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__",
    "__rtruediv__", "__pow__", "__rpow__", "__neg__", "__pos__", "__abs__",
})
# special methods a class in an answer may define (defining is harmless; reading
# special attributes such as __globals__ or __subclasses__ is what escapes)
SPECIAL_METHODS = frozenset({"__init__", "__call__", "__repr__", "__str__", "__len__", "__getitem__",
                             "__iter__", "__next__"}) | ARITHMETIC_METHODS
# A reverse-mode node updates attributes of the nodes it was computed from (micrograd:
# ``other.grad += ...``, ``out._backward = ...``). Only the checks of the AD exercises
# read these names, and only on the answer's own objects, so any object may get them.
NODE_ATTRIBUTES = frozenset({"grad", "backward_step"})
# frame, traceback, generator and code-object internals: ways back into the caller
_INTERNALS = re.compile(r"^(f|tb|gi|cr|ag|co)_")


@dataclass(frozen=True)
class Violation:
    kind: str     # "coursekit", "import", "name", "private", "assignment"
    line: int
    message: str


def check_source(source, allowed_imports=ALLOWED_IMPORTS):
    """The violations in one cell of code (an empty list when it is allowed).

    A cell that does not parse breaks nothing the policy protects: the kernel
    rejects it whole, so it is left to fail on its own.
    """
    try:
        tree = ast.parse(TransformerManager().transform_cell(source))
    except SyntaxError:
        return []
    found = []

    def flag(node, kind, message):
        found.append(Violation(kind, getattr(node, "lineno", 0), message))

    def check_identifier(node, name):
        if name == "coursekit" or name.startswith("coursekit."):
            flag(node, "coursekit", "uses coursekit's reference implementation")
        elif name == "get_ipython":
            flag(node, "name", "uses an IPython magic or shell command")
        elif name.startswith("_") and not _allowed_special(node, name):
            flag(node, "private", f"uses the private or special name {name!r}")
        elif name in FORBIDDEN_NAMES:
            flag(node, "name", f"uses {name!r}")

    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if isinstance(node, ast.ImportFrom):
                modules = [node.module or ""] if node.level == 0 else ["." * node.level]
            else:
                modules = [alias.name for alias in node.names]
            for module in modules:
                root, *inner = module.split(".")
                if root == "coursekit":
                    flag(node, "coursekit", "imports coursekit's reference implementation")
                elif root not in allowed_imports:
                    flag(node, "import", f"imports {module!r}")
                # `import numpy.lib` or `from numpy.testing import x` reach what the
                # attribute rule forbids as `np.lib` or `np.testing`.
                for part in inner:
                    if part in FORBIDDEN_ATTRIBUTES:
                        flag(node, "import", f"imports {module!r}")
            for alias in node.names:
                if alias.name == "*":
                    flag(node, "import", "uses a star import; import the names you need")
                elif isinstance(node, ast.ImportFrom) and alias.name in FORBIDDEN_ATTRIBUTES:
                    flag(node, "import", f"imports {alias.name!r} from {node.module!r}")
                for name in (alias.name.split(".")[-1], alias.asname):
                    if name and isinstance(node, ast.ImportFrom):
                        check_identifier(node, name)
        elif isinstance(node, ast.Name):
            check_identifier(node, node.id)
        elif isinstance(node, ast.Attribute):
            check_identifier(node, node.attr)
            if node.attr in FORBIDDEN_ATTRIBUTES or _INTERNALS.match(node.attr):
                flag(node, "name", f"uses the attribute {node.attr!r}")
            if isinstance(node.ctx, (ast.Store, ast.Del)) and not _is_self_attribute(node) \
                    and not (isinstance(node.ctx, ast.Store) and node.attr in NODE_ATTRIBUTES):
                flag(node, "assignment",
                     f"assigns to the attribute {ast.unparse(node)!r} of an object it did not create")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            check_identifier(node, node.name)
        elif isinstance(node, ast.arg):
            check_identifier(node, node.arg)
        elif isinstance(node, ast.keyword) and node.arg:
            check_identifier(node, node.arg)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if "coursekit" in node.value:
                flag(node, "coursekit", "names coursekit in a string")
            elif "__" in node.value:
                flag(node, "private", "names a special (dunder) attribute in a string")
    return found


def _allowed_special(node, name):
    """A special method defined by the answer, or an operator aliased in a class body;
    never an attribute (``x.__add__``) and never in a string."""
    if isinstance(node, ast.FunctionDef):
        return name in SPECIAL_METHODS
    return isinstance(node, ast.Name) and name in ARITHMETIC_METHODS


def _is_self_attribute(node):
    """``self.x = ...`` in a method: the one attribute assignment an answer may need."""
    return isinstance(node.value, ast.Name) and node.value.id == "self"


def describe(violations):
    """One line per distinct violation, in source order."""
    lines = []
    for v in sorted(violations, key=lambda v: v.line):
        line = f"line {v.line}: {v.message}"
        if line not in lines:
            lines.append(line)
    return lines
