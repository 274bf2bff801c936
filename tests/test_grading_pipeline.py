"""End to end: one `make grade` run over a class of honest, broken and dishonest submissions."""

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "01_gradients_without_gradients"
NOTEBOOK = "gradients_without_gradients.ipynb"
ANSWERS = ("answer-central", "answer-two-point", "answer-mds")


def solution_sources():
    nb = nbformat.read(ROOT / "solutions" / ASSIGNMENT / NOTEBOOK, as_version=4)
    sources = {}
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in ANSWERS:
            lines = [l for l in cell.source.split("\n") if "SOLUTION" not in l]
            sources[grade_id] = "\n".join(lines)
    return sources


def student_notebook(answers=None, edit=None, delete=(), extra_cells=()):
    """The released notebook with some answers filled in and some cells tampered with."""
    nb = nbformat.read(ROOT / "exercises" / ASSIGNMENT / NOTEBOOK, as_version=4)
    kept = []
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in delete:
            continue
        if answers and grade_id in answers:
            cell.source = answers[grade_id]
        if edit and grade_id in edit:
            cell.source = edit[grade_id]
        kept.append(cell)
    for index, source in extra_cells:
        kept.insert(index, nbformat.v4.new_code_cell(source))
    nb.cells = kept
    return nb


def submit(course, student, nb=None, raw=None, extra_files=None):
    folder = course / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True)
    if nb is not None:
        nbformat.write(nb, folder / NOTEBOOK)
    if raw is not None:
        (folder / NOTEBOOK).write_bytes(raw)
    for name, content in (extra_files or {}).items():
        (folder / name).write_text(content)
    return folder


def grade_class(course):
    """Build a class of submissions in ``course`` and grade it with one `make grade` run."""
    shutil.copy(ROOT / "nbgrader_config.py", course)
    for folder in ("solutions", "exercises"):
        shutil.copytree(ROOT / folder, course / folder)
    good = solution_sources()
    loop_mds = "while True:\n    pass\n\n" + good["answer-mds"]
    tests_ids = ["test-central-visible", "test-central-hidden", "test-two-point-visible",
                 "test-two-point-hidden", "test-two-point-unbiased", "test-mds-visible",
                 "test-mds-hidden", "test-mds-properties"]

    submit(course, "reference", student_notebook(good))
    submit(course, "untouched", student_notebook())
    submit(course, "infinite_loop", student_notebook(dict(good, **{"answer-mds": loop_mds})))
    submit(course, "corrupt", raw=b'{"cells": [ this is not json')
    submit(course, "not_a_notebook", raw=b"\x89PNG\r\n\x1a\n\x00\x00binary",
           extra_files={"notes.txt": "stray"})
    submit(course, "calls_reference", student_notebook(dict(good, **{"answer-central": (
        "import coursekit.fd\n\ndef central_difference_gradient(f, x, h):\n"
        "    return coursekit.fd.gradient(f, x, 'central', step=h)")})))
    patched = dict(good, **{"answer-central": (
        "def central_difference_gradient(f, x, h):\n    return np.zeros_like(x)\n\n"
        "np.allclose = lambda *args, **kwargs: True")})
    submit(course, "monkeypatch", student_notebook(patched, extra_cells=[
        (3, "import sys\nsys.modules['coursekit.grading.checks'] = None"),
        (4, "with open('coursekit.py', 'w') as f:\n    f.write('')"),
        (5, "%pip install fake-coursekit"),
    ]), extra_files={"coursekit.py": "def gradient(*a, **k):\n    return 0\n"})
    wrong = {"answer-central": "def central_difference_gradient(f, x, h):\n    return np.zeros_like(x)",
             "answer-two-point": "def two_point_estimate(f, x, u, tau):\n    return np.zeros_like(x)",
             "answer-mds": "def mds_gradient(W, D):\n    return np.zeros_like(W)"}
    submit(course, "edited_tests", student_notebook(wrong, edit={t: "pass" for t in tests_ids}))
    submit(course, "deleted_tests", student_notebook(wrong, delete=tests_ids))
    before = {p: p.read_bytes() for p in (course / "submitted").rglob("*") if p.is_file()}

    done = subprocess.run([sys.executable, str(ROOT / "tools" / "grade.py"), "--root", str(course),
                           "--cell-timeout", "10", "--submission-timeout", "300"],
                          capture_output=True, text=True, timeout=1200)
    with open(course / "grades.csv", newline="") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    after = {p: p.read_bytes() for p in (course / "submitted").rglob("*") if p.is_file()}
    return course, done, rows, before == after


def feedback_html(course, student):
    return (course / "feedback" / student / ASSIGNMENT / NOTEBOOK.replace(".ipynb", ".html")).read_text()


@pytest.mark.slow
def test_grade_the_class(tmp_path):
    # one test, one grading run: the run is the expensive part (about 100 s)
    course, done, rows, untouched = grade_class(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert untouched, "grading modified the submitted files"
    assert "reference" in done.stdout and "score" in done.stdout  # the summary table

    def check(student, score, status, *details):
        row = rows[student]
        assert (float(row["score"]), row["status"]) == (score, status), row
        assert float(row["max_score"]) == 10, row
        for text in details:
            assert text in row["details"], row

    # the reference solution passes its visible and hidden tests
    check("reference", 10, "ok")
    check("untouched", 0, "ok")
    # the loop is stopped by the cell timeout; the other two parts still score
    check("infinite_loop", 6, "timeout", "answer-mds ran out of time")
    check("corrupt", 0, "unreadable", "not a readable notebook")
    check("not_a_notebook", 0, "unreadable", "not a readable notebook", "stray file notes.txt")
    check("calls_reference", 7, "policy-violation", "coursekit")
    check("monkeypatch", 7, "policy-violation", "np.allclose", "'sys'", "'open'",
          "IPython magic", "stray file coursekit.py")
    check("edited_tests", 0, "tampered", "locked cell 'test-mds-hidden' was edited")
    check("deleted_tests", 0, "tampered", "locked cell 'test-central-visible' was deleted")
    check_feedback(course)


def check_feedback(course):
    """Feedback shows no hidden-test code and explains violations."""
    hidden_seeds = ("9011", "9021", "9031")
    for student in ("reference", "untouched", "edited_tests", "deleted_tests", "infinite_loop"):
        html = feedback_html(course, student)
        assert "hidden tests: not shown" in html
        assert not any(seed in html for seed in hidden_seeds), student
        assert "BEGIN HIDDEN TESTS" not in html
    # a failing hidden test shows its error message only, no traceback into the hidden code
    assert "NotImplementedError" in feedback_html(course, "untouched")
    assert "not allowed" in feedback_html(course, "calls_reference")
    autograded = (course / "autograded" / "reference" / ASSIGNMENT / NOTEBOOK).read_text()
    assert "9011" in autograded  # the hidden tests did run
