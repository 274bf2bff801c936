"""``make exercises``: the student versions in exercises/ are generated from solutions/.

One assignment per folder, ``solutions/<NN_name>/<name>.ipynb``. nbgrader's
generate_assignment strips solutions and hidden tests, locks the test cells and
records every cell in the gradebook; we then rewrite each notebook in one
canonical form, so that generating twice gives the same bytes and a stale
exercises/ shows up as a diff (:func:`stale_files`).
"""

import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

SOURCE = "solutions"
RELEASE = "exercises"
KEPT_METADATA = ("kernelspec", "language_info")
# the directory holding the coursekit package these modules belong to
PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def assignments(root):
    """The assignment folders of solutions/, in course order."""
    source = Path(root) / SOURCE
    return sorted(p.name for p in source.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


def nbgrader_environment(root, **extra):
    """The environment for nbgrader: the venv's scripts on PATH (it runs ``alembic``)
    and this coursekit importable by the config and by the kernels it starts."""
    env = dict(os.environ, **extra)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(p for p in [PACKAGE_ROOT, env.get("PYTHONPATH", "")] if p)
    return env


def nbgrader(root, *args, timeout=None, env=None):
    """Run an nbgrader command in the course directory (where nbgrader_config.py is)."""
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=root,
                          env=env or nbgrader_environment(root),
                          capture_output=True, text=True, timeout=timeout)


def normalize(path):
    """Rewrite a released notebook in canonical form: no outputs, only stable metadata."""
    nb = nbformat.read(path, as_version=4)
    nb.metadata = {k: nb.metadata[k] for k in KEPT_METADATA if k in nb.metadata}
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(nb, path)


def generate(root, release_directory=RELEASE):
    """Regenerate every assignment of solutions/ into ``release_directory``; returns their names."""
    root = Path(root).resolve()
    names = assignments(root)
    release = root / release_directory
    release.mkdir(exist_ok=True)
    for stale in release.iterdir():
        if stale.is_dir() and stale.name not in names:
            shutil.rmtree(stale)
    for name in names:
        shutil.rmtree(release / name, ignore_errors=True)
        done = nbgrader(root, "generate_assignment", name, "--force",
                        f"--CourseDirectory.release_directory={release_directory}")
        if done.returncode != 0:
            raise RuntimeError(f"nbgrader generate_assignment {name} failed:\n{done.stdout}{done.stderr}")
        for notebook in sorted((release / name).rglob("*.ipynb")):
            normalize(notebook)
    return names


def stale_files(root):
    """Files of exercises/ that differ from a fresh generation (empty when up to date)."""
    root = Path(root).resolve()
    with tempfile.TemporaryDirectory(prefix="coursekit-exercises-") as tmp:
        shutil.copy(root / "nbgrader_config.py", tmp)
        shutil.copytree(root / SOURCE, Path(tmp) / SOURCE)
        generate(tmp)
        return _differences(Path(tmp) / RELEASE, root / RELEASE)


def _differences(fresh, committed):
    def files(top):
        return {p.relative_to(top) for p in top.rglob("*") if p.is_file()} if top.exists() else set()
    fresh_files, committed_files = files(fresh), files(committed)
    differ = fresh_files ^ committed_files
    differ |= {p for p in fresh_files & committed_files
               if not filecmp.cmp(fresh / p, committed / p, shallow=False)}
    return sorted(str(p) for p in differ)
