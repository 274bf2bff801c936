"""Turn each lecture into a reveal.js slide deck.

For every MyST lecture given on the command line: read it with jupytext,
execute it (working directory = the lecture's folder, this checkout's
``coursekit`` importable), and export it with nbconvert's ``SlidesExporter``.
The cells' ``slideshow.slide_type`` metadata decides what becomes a slide,
a sub-slide, a fragment, or is skipped.

    python tools/make_slides.py --out _build/slides lectures/*.md

Writes ``<out>/<lecture>.slides.html``. Exits with status 1, after trying every
lecture, if any cell raised: a deck never shows a traceback.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import jupytext
from nbconvert import SlidesExporter
from nbconvert.preprocessors import CellExecutionError, ExecutePreprocessor

REPO_ROOT = Path(__file__).resolve().parent.parent

# nbconvert renders plain Markdown; these rewrite the MyST the book uses into it.
_ROLE = re.compile(r"\{(?P<role>[a-z:]+)\}`(?P<text>[^`]*)`")
_ADMONITION = re.compile(
    r"^:::+\{(?:admonition|note|warning|tip|important)\}[ \t]*(?P<title>[^\n]*)\n(?::[a-z]+:[^\n]*\n)*(?P<body>.*?)\n:::+[ \t]*$",
    re.DOTALL | re.MULTILINE,
)


def _role_as_markdown(match: re.Match) -> str:
    role, text = match["role"], match["text"]
    if role.startswith("cite"):
        return "[" + ", ".join(key.strip() for key in text.split(",")) + "]"
    if "<" in text and text.endswith(">"):  # {doc}`shown text <target>`
        return text[: text.index("<")].strip()
    if role == "doc":
        return "*" + text.rstrip("/").rsplit("/", 1)[-1].replace("_", " ") + "*"
    return f"`{text}`"  # {func}, {mod}, ...: show the name as code


def myst_to_markdown(source: str) -> str:
    """Rewrite MyST roles and admonitions in a markdown cell as plain Markdown for the slides."""
    source = _ADMONITION.sub(
        lambda m: "\n".join(["> **" + m["title"].strip() + "**", ">"] + ["> " + line for line in m["body"].splitlines()]),
        source,
    )
    return _ROLE.sub(_role_as_markdown, source)


def _use_this_checkout() -> None:
    """Let the kernels import ``coursekit`` from this repository even if it is not installed."""
    paths = [str(REPO_ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))


def make_deck(lecture: Path, out_dir: Path, timeout: int, kernel: str) -> Path:
    """Execute one lecture and write its slide deck; return the deck's path."""
    notebook = jupytext.read(lecture, fmt="md:myst")
    if not any(cell.cell_type == "code" for cell in notebook.cells):
        raise ValueError(f"{lecture} has no code cells: is it a MyST notebook (```{{code-cell}} blocks)?")
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            cell.source = myst_to_markdown(cell.source)
    executor = ExecutePreprocessor(timeout=timeout, kernel_name=kernel, allow_errors=False)
    executor.preprocess(notebook, {"metadata": {"path": str(lecture.parent.resolve())}})
    exporter = SlidesExporter(reveal_scroll=True, reveal_number="c/t")
    body, _ = exporter.from_notebook_node(notebook, resources={"metadata": {"name": lecture.stem}})
    deck = out_dir / f"{lecture.stem}.slides.html"
    deck.write_text(body, encoding="utf-8")
    return deck


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lectures", nargs="+", type=Path, help="MyST lecture files (lectures/*.md)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "_build" / "slides", help="output folder")
    parser.add_argument("--timeout", type=int, default=120, help="seconds allowed per cell")
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel to execute with")
    args = parser.parse_args(argv)

    _use_this_checkout()
    args.out.mkdir(parents=True, exist_ok=True)
    failed = []
    for lecture in args.lectures:
        start = time.perf_counter()
        try:
            deck = make_deck(lecture, args.out, args.timeout, args.kernel)
        except (CellExecutionError, ValueError) as error:
            print(f"FAILED {lecture}: {error}", file=sys.stderr)
            failed.append(lecture)
            continue
        print(f"{lecture} -> {deck} ({time.perf_counter() - start:.1f} s)")
    if failed:
        print(f"{len(failed)} lecture(s) failed: {', '.join(map(str, failed))}", file=sys.stderr)
        return 1
    print(f"Slide decks are in {args.out.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
