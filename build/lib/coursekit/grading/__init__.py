"""Autograding for the course's nbgrader exercises.

The public surface, one name per job:

- ``INSTALL_URL``: where Colab installs coursekit from (the first cell of every
  exercise notebook pip-installs it when ``import coursekit`` fails).
- :mod:`coursekit.grading.checks`: what the test cells of the exercises call.
- :mod:`coursekit.grading.reference`: runs a reference implementation in a fresh,
  isolated interpreter, out of reach of the student's kernel.
- :mod:`coursekit.grading.policy`: the static rules an answer cell must follow.
- :mod:`coursekit.grading.preprocessors`: nbgrader preprocessors that apply the
  policy, detect tampering and hide hidden tests from feedback.
- :mod:`coursekit.grading.pipeline`: ``make grade`` and ``make exercises``.

Only this file is imported by the test cells, so it stays free of nbgrader.
"""

INSTALL_URL = "git+https://github.com/coursekit/coursekit"
INSTALL_REQUIREMENT = f"coursekit @ {INSTALL_URL}"

__all__ = ["INSTALL_URL", "INSTALL_REQUIREMENT"]
