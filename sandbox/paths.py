"""Where the course lives on disk: a leaf module (standard library only), so that the `course` tooling can find
the repository without loading the notebooks' runtime."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA_ROOT = Path(os.environ.get("COURSE_DATA_ROOT", REPO / ".course-data"))  # every notebook's data, git-ignored
