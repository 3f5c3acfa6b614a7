"""Planted answers: code a learner would plausibly write for an exercise, and what its check must say about it.

A wrong answer (`Planted`) must fail, with feedback that names its mistake (`expect`) and quotes no line of the
solution. An acceptable variant (`Acceptable`) is another correct way to do it, and must pass.
"""

from __future__ import annotations

from dataclasses import dataclass

# What a wrong answer gets wrong. "async" is the async mechanics the chapter teaches (a missing await, a blocked
# loop, calls made one after another, the sync ORM on the loop); the others are what the task asks beyond them.
ABOUT = ("async", "result", "condition", "protocol", "concurrency")


@dataclass(frozen=True)
class Planted:
    mistake: str
    code: str  # replaces the body of one `### BEGIN SOLUTION` block (the test adds the indentation)
    expect: str  # a phrase the check's feedback must contain: the name of the mistake
    about: str = "async"  # one of ABOUT

    def __post_init__(self):
        assert self.about in ABOUT, f"{self.mistake!r}: about={self.about!r}, not one of {ABOUT}"


@dataclass(frozen=True)
class Acceptable:
    variant: str  # what makes it different from the solution, e.g. "TaskGroup instead of gather"
    code: str  # replaces the body of the `### BEGIN SOLUTION` block, like a planted answer
