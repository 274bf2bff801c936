"""tools/make_slides.py: every lecture becomes an executed reveal.js deck without errors.

The deck tests are slow: they execute every lecture.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LECTURES = sorted((REPO / "lectures").glob("*.md"))
sys.path.insert(0, str(REPO / "tools"))
import make_slides  # noqa: E402


@pytest.fixture(scope="module")
def decks(tmp_path_factory):
    out = tmp_path_factory.mktemp("slides")
    result = subprocess.run(
        [sys.executable, str(REPO / "tools" / "make_slides.py"), "--out", str(out), *map(str, LECTURES)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert str(out.resolve()) in result.stdout, "the tool says where the decks are"
    return out


@pytest.mark.slow
@pytest.mark.parametrize("lecture", LECTURES, ids=lambda p: p.stem)
def test_every_lecture_yields_a_rendered_deck(decks, lecture):
    deck = decks / f"{lecture.stem}.slides.html"
    assert deck.exists()
    html = deck.read_text(encoding="utf-8")
    assert "reveal" in html.lower()
    assert html.count("<section") >= 5, "several slides"
    assert "MathJax" in html and "$$" in html, "math is typeset by MathJax"
    assert "data:image/png;base64," in html, "figures are embedded"
    for marker in ("Traceback", "NotImplementedError", '"ename"', "output_error"):
        assert marker not in html, f"error output in the deck ({marker})"
    for myst in ("{cite}", "{doc}", ":::{admonition}"):
        assert myst not in html, f"unrendered MyST in the deck ({myst})"


@pytest.mark.slow
def test_a_failing_lecture_fails_loudly(tmp_path):
    broken = tmp_path / "broken.md"
    broken.write_text(
        "---\njupytext:\n  text_representation:\n    format_name: myst\nkernelspec:\n"
        "  display_name: Python 3\n  language: python\n  name: python3\n---\n\n# Broken\n\n"
        "```{code-cell} ipython3\nraise RuntimeError('boom')\n```\n"
    )
    result = subprocess.run(
        [sys.executable, str(REPO / "tools" / "make_slides.py"), "--out", str(tmp_path / "out"), str(broken)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert re.search(r"FAILED .*broken\.md", result.stderr)
    assert not (tmp_path / "out" / "broken.slides.html").exists()


def test_myst_is_rewritten_as_plain_markdown():
    source = (
        ":::{admonition} Common mistake: forward costs $2dT$\n:class: warning\nIt costs $(d + 1)T$.\n:::\n\n"
        "See {cite}`nesterov2017random,duchi2015optimal`, {cite:t}`squire1998using`, "
        "{doc}`/exercises/01_gradients_without_gradients/gradients_without_gradients`, "
        "{doc}`the API </book/api/index>` and {func}`coursekit.fd.gradient`."
    )
    markdown = make_slides.myst_to_markdown(source)
    assert markdown.startswith("> **Common mistake: forward costs $2dT$**\n>\n> It costs $(d + 1)T$.")
    assert ":class:" not in markdown and ":::" not in markdown
    assert "[nesterov2017random, duchi2015optimal]" in markdown and "[squire1998using]" in markdown
    assert "*gradients without gradients*" in markdown and "the API" in markdown
    assert "`coursekit.fd.gradient`" in markdown and "{" not in markdown
