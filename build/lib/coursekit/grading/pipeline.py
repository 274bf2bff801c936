"""``make grade``: autograde every submission under submitted/<student>/<assignment>/.

For each assignment of solutions/ and each student:

1. validate the submitted files: the assignment's notebooks must parse as
   notebooks; a corrupt or foreign file, a link or a stray file is reported and
   left out. The student's files are only read: valid notebooks are copied to a
   staging directory, which is what nbgrader grades.
2. ``nbgrader autograde`` for that student alone, in its own process group with
   a wall-clock cap, so a crash or a hang stops only that submission;
3. ``nbgrader generate_feedback`` (hidden tests removed, see preprocessors.py);
4. one row of grades.csv: student, assignment, score, max_score, status, details.

Statuses, worst first: crashed, unreadable, missing, policy-violation, tampered,
timeout, ok. The worst one is the status; details list every finding.
"""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from tqdm import tqdm

from .preprocessors import EVENTS_VARIABLE
from .release import SOURCE, assignments, nbgrader_environment

SUBMITTED = "submitted"
AUTOGRADED = "autograded"
GRADEBOOK = "gradebook.db"
GRADES = "grades.csv"
STATUSES = ("crashed", "unreadable", "missing", "policy-violation", "tampered", "timeout", "ok")
MAX_NOTEBOOK_BYTES = 20 * 2**20
ALLOWED_EXTRA_FILES = {"timestamp.txt"}


class PipelineError(RuntimeError):
    """The pipeline itself failed (not one submission)."""


@dataclass
class Result:
    student: str
    assignment: str
    score: float = 0.0
    max_score: float = 0.0
    findings: list = field(default_factory=list)  # (status, message)

    def add(self, status, message):
        self.findings.append((status, message))

    @property
    def status(self):
        found = {status for status, _ in self.findings}
        return next(s for s in STATUSES if s in found or s == "ok")

    def row(self):
        details = "; ".join(message for _, message in self.findings)
        return [self.student, self.assignment, f"{self.score:g}", f"{self.max_score:g}", self.status, details]


def _run(command, root, env, timeout):
    """Run a command in its own process group; kill the whole group (kernels too) on timeout."""
    with subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, start_new_session=True) as process:
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            return None, ""
        return process.returncode, output


def expected_notebooks(root, assignment):
    return sorted(p.name for p in (Path(root) / SOURCE / assignment).glob("*.ipynb"))


def validate(folder, notebooks, result):
    """The valid notebooks (and timestamp) to stage; every problem goes into ``result``."""
    keep = []
    for path in sorted(folder.rglob("*")):
        name = str(path.relative_to(folder))
        if path.is_symlink():
            result.add("unreadable" if name in notebooks else "ok", f"{name}: a link, ignored")
        elif path.is_dir():
            continue
        elif name in ALLOWED_EXTRA_FILES:
            keep.append(path)
        elif name not in notebooks:
            result.add("ok", f"stray file {name} ignored")
        elif path.stat().st_size > MAX_NOTEBOOK_BYTES:
            result.add("unreadable", f"{name}: larger than {MAX_NOTEBOOK_BYTES >> 20} MiB, not graded")
        else:
            try:
                nbformat.validate(nbformat.read(path, as_version=4))
            except Exception as error:  # any parse or schema error: the file is not a notebook
                result.add("unreadable", f"{name}: not a readable notebook ({type(error).__name__}), not graded")
            else:
                keep.append(path)
    for name in notebooks:
        if not (folder / name).exists() and not (folder / name).is_symlink():
            result.add("missing", f"{name}: not submitted")
    return keep


def register(root, env):
    """Record every assignment's cells in the gradebook (released into a scratch folder,
    so exercises/ is left alone)."""
    names = assignments(root)
    with tempfile.TemporaryDirectory(prefix="coursekit-release-") as scratch:
        for name in names:
            command = [sys.executable, "-m", "nbgrader", "generate_assignment", name, "--force",
                       f"--CourseDirectory.release_directory={scratch}"]
            code, output = _run(command, root, env, timeout=600)
            if code != 0:
                raise PipelineError(f"nbgrader generate_assignment {name} failed:\n{output}")
    return names


def _scores(root, assignment, student):
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(f"sqlite:///{Path(root) / GRADEBOOK}") as gradebook:
        max_score = gradebook.find_assignment(assignment).max_score
        if student is None:
            return None, max_score
        try:
            return gradebook.find_submission(assignment, student).score, max_score
        except MissingEntry:
            return 0.0, max_score


def _timeouts(root, assignment, student):
    found = []
    for path in sorted((Path(root) / AUTOGRADED / student / assignment).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error" and output.get("ename") == "CellTimeoutError":
                    where = cell.metadata.get("nbgrader", {}).get("grade_id") or "a cell"
                    found.append(f"{path.name}: {where} ran out of time and was stopped")
    return found


def grade_submission(root, assignment, student, notebooks, env, staging, nbgrader_options, submission_timeout):
    result = Result(student, assignment)
    _, result.max_score = _scores(root, assignment, None)
    keep = validate(Path(root) / SUBMITTED / student / assignment, notebooks, result)
    if not any(p.suffix == ".ipynb" for p in keep):
        if not result.findings:
            result.add("missing", "no notebook submitted")
        return result
    target = staging / student / assignment
    target.mkdir(parents=True)
    for path in keep:
        shutil.copyfile(path, target / path.name)

    events = staging / f"{student}-{assignment}.events"
    env = dict(env, **{EVENTS_VARIABLE: str(events)})
    command = [sys.executable, "-m", "nbgrader", "autograde", assignment, "--student", student, "--force",
               f"--CourseDirectory.submitted_directory={staging}", *nbgrader_options]
    code, output = _run(command, root, env, submission_timeout)
    if code is None:
        result.add("crashed", f"grading took longer than {submission_timeout:g} s and was stopped")
        return result
    if code != 0:
        last = [line for line in output.splitlines() if "ERROR" in line][-1:] or ["see the nbgrader log"]
        result.add("crashed", f"autograde failed: {last[0].strip()}")
        return result
    if events.exists():
        for line in events.read_text(encoding="utf-8").splitlines():
            event = json.loads(line)
            result.add(event["kind"], event["message"])
    for message in _timeouts(root, assignment, student):
        result.add("timeout", message)
    result.score, result.max_score = _scores(root, assignment, student)

    command = [sys.executable, "-m", "nbgrader", "generate_feedback", assignment, "--student", student, "--force"]
    code, output = _run(command, root, env, submission_timeout)
    if code != 0:
        result.add("ok", "feedback could not be generated")
    return result


def students(root):
    folder = Path(root) / SUBMITTED
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith("."))


def grade_class(root, cell_timeout=None, submission_timeout=900.0, progress=True):
    """Grade every submission; returns the results (also written to grades.csv)."""
    root = Path(root).resolve()
    env = nbgrader_environment(root)
    options = [] if cell_timeout is None else [f"--Execute.timeout={int(cell_timeout)}"]
    names = register(root, env)
    pairs = [(a, s) for s in students(root) for a in names]
    results = []
    with tempfile.TemporaryDirectory(prefix="coursekit-grade-") as staging:
        for assignment, student in tqdm(pairs, desc="grading", unit="submission", disable=not progress):
            if not (root / SUBMITTED / student / assignment).is_dir():
                continue
            notebooks = expected_notebooks(root, assignment)
            results.append(grade_submission(root, assignment, student, notebooks, env, Path(staging),
                                            options, submission_timeout))
    with open(root / GRADES, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["student", "assignment", "score", "max_score", "status", "details"])
        writer.writerows(r.row() for r in results)
    return results


def summary(results):
    """A plain-text table of the results."""
    rows = [["student", "assignment", "score", "status"]]
    rows += [[r.student, r.assignment, f"{r.score:g}/{r.max_score:g}", r.status] for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)
