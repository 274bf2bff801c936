"""The lecture sources: paired notebooks in sync, slide metadata present, no algorithms copied in.

Fast: nothing is executed here (tests/test_book.py and tests/test_slides.py do that).
"""

import ast
import importlib.util
import re
from pathlib import Path

import jupytext
import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
LECTURES = sorted((REPO / "lectures").glob("*.md"))
# Names that would mean a lecture carries its own copy of something coursekit provides.
# Small adapters (a test function, its exact derivative, a reshape around
# coursekit.mds.loss) are fine; these names are not.
ALGORITHM_NAME = re.compile(
    r"difference|estimat|oracle|descent|optimi[sz]e|minimi[sz]e|procrustes|classical|two_point|"
    r"zero_order|finite|numerical|step_error|observed_order|jacobian|directional|random_direction",
    re.IGNORECASE,
)


def _pair_lectures():
    """tools/pair_lectures.py, the module behind `make notebooks`."""
    spec = importlib.util.spec_from_file_location("pair_lectures", REPO / "tools" / "pair_lectures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_there_are_lectures():
    assert LECTURES, "no lectures/*.md found"


@pytest.mark.parametrize("lecture", LECTURES, ids=lambda p: p.stem)
def test_paired_notebook_is_in_sync(lecture):
    paired = lecture.with_suffix(".ipynb")
    assert paired.exists(), f"{paired.name} is missing: run `make notebooks`"
    # Byte for byte: `make notebooks` is deterministic, so a fresh clone's build
    # leaves the committed file untouched.
    assert paired.read_text() == _pair_lectures().paired_notebook(lecture), (
        f"{paired.name} is stale: run `make notebooks`"
    )
    committed = nbformat.read(paired, as_version=4)
    assert committed.metadata.get("kernelspec", {}).get("name") == "python3"
    assert "jupytext" not in committed.metadata, "make notebooks strips the jupytext metadata"
    assert all(cell.get("outputs", []) == [] for cell in committed.cells if cell.cell_type == "code"), (
        "the paired notebook is committed without outputs"
    )


@pytest.mark.parametrize("lecture", LECTURES, ids=lambda p: p.stem)
def test_lecture_has_slide_metadata(lecture):
    notebook = jupytext.read(lecture)
    types = [cell.metadata.get("slideshow", {}).get("slide_type") for cell in notebook.cells]
    assert types.count("slide") >= 5, "a lecture should open several slides"
    assert {"subslide", "fragment", "skip"} & set(types), "use sub-slides/fragments/skip for pacing and setup"
    assert notebook.metadata.get("kernelspec", {}).get("name") == "python3"


@pytest.mark.parametrize("lecture", LECTURES, ids=lambda p: p.stem)
def test_lecture_calls_the_library_instead_of_defining_algorithms(lecture):
    notebook = jupytext.read(lecture)
    code = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    assert any("coursekit" in source for source in code), "a lecture should import coursekit"
    for source in code:
        python = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
        tree = ast.parse(python)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                assert not ALGORITHM_NAME.search(node.name), (
                    f"{lecture.name} defines {node.name!r}: call coursekit instead of copying an algorithm"
                )
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                module = getattr(node, "module", None) or ""
                names = [alias.name for alias in node.names]
                assert "matplotlib.pyplot" not in [module, *names], "figures come from coursekit.plots"


@pytest.mark.parametrize("lecture", LECTURES, ids=lambda p: p.stem)
def test_lecture_randomness_is_seeded(lecture):
    notebook = jupytext.read(lecture)
    code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    assert "np.random.seed" not in code, "pass seed= to coursekit functions instead of a global seed"
    assert not re.search(r"default_rng\(\s*\)", code), "an unseeded generator makes the lecture irreproducible"
