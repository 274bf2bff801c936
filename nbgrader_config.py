# nbgrader configuration of the course: `make exercises` and `make grade` read it.
# One assignment per folder: solutions/<NN_name>/<name>.ipynb (the instructor's
# version, with solution and hidden-test markers) becomes exercises/<NN_name>/.
import os

from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import (
    AssignLatePenalties, CheckCellMetadata, ClearOutput, DeduplicateIds, Execute, GetGrades,
    IgnorePattern, LimitOutput, OverwriteCells, OverwriteKernelspec, SaveAutoGrades)

from coursekit.grading.preprocessors import EnforceAnswerPolicy, HideHiddenTests, RestoreLockedCells

c = get_config()  # noqa: F821 (provided by traitlets when it loads this file)

ROOT = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.root = ROOT
c.CourseDirectory.course_id = "coursekit"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(ROOT, "gradebook.db")

# Every cell gets 30 s; a cell that runs longer is interrupted and marked as an
# error, and the rest of the notebook still runs.
c.Execute.timeout = 30
c.Execute.interrupt_on_timeout = True

# Sanitizing: restore/report tampered locked cells before nbgrader overwrites them,
# then check every student-written cell against the answer policy.
c.Autograde.sanitize_preprocessors = [
    ClearOutput,
    DeduplicateIds,
    RestoreLockedCells,
    OverwriteKernelspec,
    OverwriteCells,
    EnforceAnswerPolicy,
    CheckCellMetadata,
]
c.Autograde.autograde_preprocessors = [
    Execute,
    IgnorePattern,
    ClearMetadataPreprocessor,
    LimitOutput,
    SaveAutoGrades,
    AssignLatePenalties,
    CheckCellMetadata,
]
c.EnforceAnswerPolicy.allowed_imports = ["numpy", "math"]

# Feedback must not show hidden tests.
c.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor]
