"""make grade: autograde submitted/<student>/<assignment>/ into autograded/, feedback/ and grades.csv.

Exit status 0 when the class was graded (bad submissions are reported in
grades.csv); 1 when the pipeline itself failed.
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from coursekit.grading.pipeline import PipelineError, grade_class, summary  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="course directory (default: this repository)")
    parser.add_argument("--cell-timeout", type=float, help="seconds per cell (default: nbgrader_config.py)")
    parser.add_argument("--submission-timeout", type=float, default=900.0,
                        help="wall-clock cap for grading one submission (default: 900)")
    args = parser.parse_args(argv)
    try:
        results = grade_class(args.root, args.cell_timeout, args.submission_timeout)
    except PipelineError as error:
        print(f"grading failed: {error}", file=sys.stderr)
        return 1
    if not results:
        print(f"no submissions found under {args.root / 'submitted'}")
        return 0
    print(summary(results))
    print(f"grades written to {args.root / 'grades.csv'}, feedback to {args.root / 'feedback'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
