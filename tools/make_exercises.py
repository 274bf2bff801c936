"""make exercises: regenerate exercises/ from solutions/ (see coursekit/grading/release.py)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from coursekit.grading.release import generate  # noqa: E402

if __name__ == "__main__":
    names = generate(ROOT)
    print(f"exercises/ regenerated: {', '.join(names) or 'no assignments'}")
