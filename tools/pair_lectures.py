"""Write the paired .ipynb of every MyST lecture (what Colab, Binder and downloads open).

jupytext gives every converted cell a random id, so a plain conversion would
change the committed notebooks on every build. Here ids are numbered by
position, the jupytext header is dropped, and a file is rewritten only when its
content changes: the same lecture always yields the same bytes.
"""

import argparse
import sys
from pathlib import Path

import jupytext
import nbformat


def paired_notebook(lecture: Path) -> str:
    """The .ipynb text for one MyST lecture, deterministic in its content."""
    notebook = jupytext.read(lecture)
    notebook.metadata.pop("jupytext", None)
    for index, cell in enumerate(notebook.cells):
        cell.id = f"cell-{index:03d}"
    return nbformat.writes(notebook) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lectures", nargs="+", type=Path, help="MyST .md lectures")
    args = parser.parse_args(argv)
    for lecture in args.lectures:
        target = lecture.with_suffix(".ipynb")
        text = paired_notebook(lecture)
        if not target.exists() or target.read_text() != text:
            target.write_text(text)
            print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
