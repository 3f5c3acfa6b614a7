"""What an exercise check and the grader agree on, and nothing else (standard library only, so the grader needs no
check and no runtime to read a check cell's outputs).

A check cell is a code cell tagged CHECK_TAG whose metadata names its exercise (`exercise_of`). When it runs, the
check prints PASS_MARK and a sentence for a pass, raises ExerciseFailed (feedback only, no traceback) for a wrong
answer, and lets a stub's NotImplementedError through for "not attempted".
"""

from __future__ import annotations

CHECK_TAG = "exercise-check"
PASS_MARK = "\u2705"
FAIL_MARK = "\u274c"


class ExerciseFailed(AssertionError):
    """The learner's answer is not right yet; the message says which async mistake it makes."""

    def __init__(self, exercise: str, message: str):
        super().__init__(f"[{exercise}] {message}")
        self.exercise, self.feedback = exercise, message

    def _render_traceback_(self) -> list[str]:
        """IPython shows this instead of a traceback: the feedback is the point, not the check's internals."""
        return [f"{FAIL_MARK} Exercise {self.exercise!r} is not passed yet:", f"   {self.feedback}"]


def feedback_of(evalue: str) -> str:
    """The feedback of an ExerciseFailed, from the error text a notebook stores (`[exercise] feedback`)."""
    return evalue.split("] ", 1)[-1]


def exercise_of(cell) -> str | None:
    """The exercise a check cell checks, or None for any other cell."""
    if CHECK_TAG not in cell.get("metadata", {}).get("tags", []):
        return None
    return cell["metadata"].get("course", {}).get("exercise")

