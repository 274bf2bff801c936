"""Call a reference implementation out of process.

A test cell runs inside the student's kernel, where the student's code could
have replaced anything importable. The reference answer is therefore computed
in a fresh ``python -I`` interpreter (no PYTHONPATH, no user site, no current
directory on ``sys.path``) that imports coursekit from the directory this file
lives in and calls the named function on pickled arguments. Arguments must be
picklable: use the module-level functions of :mod:`coursekit.grading.testfunctions`,
parametrized with :func:`functools.partial`.
"""

import pickle
import subprocess
import sys
from pathlib import Path

# the directory that holds the coursekit package
_ROOT = str(Path(__file__).resolve().parents[2])

_RUNNER = """
import pickle, sys
sys.path.insert(0, sys.argv[1])
import importlib
module_name, _, function_name = sys.argv[2].rpartition(".")
function = getattr(importlib.import_module(module_name), function_name)
calls = pickle.load(sys.stdin.buffer)
results = [function(*args, **kwargs) for args, kwargs in calls]
sys.stdout.buffer.write(pickle.dumps(results))
"""


def reference_many(qualname, calls, timeout=20.0):
    """Results of ``qualname(*args, **kwargs)`` for each ``(args, kwargs)`` in ``calls``.

    One subprocess serves all the calls, so a test cell pays the interpreter
    start-up once.
    """
    if not qualname.startswith("coursekit."):
        raise ValueError(f"reference functions live in coursekit, got {qualname!r}")
    payload = pickle.dumps([(tuple(args), dict(kwargs)) for args, kwargs in calls])
    done = subprocess.run(
        [sys.executable, "-I", "-c", _RUNNER, _ROOT, qualname],
        input=payload, capture_output=True, timeout=timeout, cwd=_ROOT,
    )
    if done.returncode != 0:
        raise RuntimeError(f"reference {qualname} failed:\n{done.stderr.decode(errors='replace')}")
    return pickle.loads(done.stdout)


def reference(qualname, *args, **kwargs):
    """``qualname(*args, **kwargs)`` computed in a fresh isolated interpreter."""
    return reference_many(qualname, [(args, kwargs)])[0]
