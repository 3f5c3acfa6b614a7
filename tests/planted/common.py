"""One planted wrong answer: the mistake, the code a learner would write, and what the feedback must say."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Planted:
    mistake: str
    code: str  # replaces the body of one `### BEGIN SOLUTION` block (the test adds the indentation)
    expect: str  # a phrase the check's feedback must contain: the name of the async mistake
