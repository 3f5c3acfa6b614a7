"""Active learning in a lesson: a prediction compared with what ran (`reveal`), and the closing quiz (`quiz`).

A lesson asks for a guess in a cell tagged `predict` before the cell that measures, then calls
`lab.reveal(guess, measured)`. Its "Check your understanding" section asks multiple-choice questions in Markdown
cells tagged `quiz`; the code cell under each calls `quiz.check(n, answer)`. The answers and explanations live in
`sandbox/lab/quizzes/<lesson>.toml`, one `[[questions]]` table per question, in order:

    [[questions]]
    answer = "b"
    see = "Eight requests, one thread"     # a heading of the lesson: the explanation links to it
    right = "Why b is right."
    wrong = { a = "Why a is wrong.", c = "Why c is wrong." }
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

BANKS = Path(__file__).with_name("quizzes")


def _close(guess: object, measured: object, tolerance: float) -> bool:
    if isinstance(guess, bool) or isinstance(measured, bool) or not isinstance(guess, int | float) \
            or not isinstance(measured, int | float):
        return guess == measured
    return math.isclose(guess, measured, rel_tol=tolerance, abs_tol=tolerance if measured == 0 else 0)


def reveal(guess: object, measured: object, what: str = "", *, tolerance: float = 0.25) -> bool | None:
    """Print the learner's prediction beside what ran; True when it was within `tolerance` (relative) of it."""
    unit = f" {what}" if what else ""
    if guess is None:
        print(f"Measured: {measured}{unit}. (Write your guess in the prediction cell above and run both again.)")
        return None
    hit = _close(guess, measured, tolerance)
    verdict = "right" if hit else "not what happened: read on for why"
    print(f"You predicted {guess}{unit}; measured {measured}{unit}: {verdict}.")
    return hit


def anchor(heading: str) -> str:
    """JupyterLab's id for a Markdown heading: its rendered text (no backticks or emphasis marks), spaces as
    dashes."""
    return "#" + re.sub(r"\s+", "-", re.sub(r"[`*]", "", heading.strip()))


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    text: str

    def _repr_markdown_(self) -> str:
        return self.text


@dataclass(frozen=True)
class Question:
    answer: str
    see: str
    right: str
    wrong: dict[str, str]

    @property
    def choices(self) -> list[str]:
        return sorted([self.answer, *self.wrong])


class Quiz:
    """The closing questions of one lesson, checked in the notebook: `quiz = lab.quiz("01-sync-vs-async")`."""

    def __init__(self, lesson: str) -> None:
        path = BANKS / f"{lesson}.toml"
        if not path.exists():
            raise ValueError(f"no quiz for {lesson!r}: expected {path}")
        self.lesson = lesson
        self.questions = [Question(q["answer"], q["see"], q["right"], dict(q["wrong"]))
                          for q in tomllib.loads(path.read_text())["questions"]]

    def verdict(self, number: int, answer: object) -> Verdict:
        """Whether `answer` to question `number` (from 1) is right, with the explanation and where it was shown."""
        if not 1 <= number <= len(self.questions):
            return Verdict(False, f"There is no question {number}: this quiz has 1 to {len(self.questions)}.")
        q = self.questions[number - 1]
        letters = ", ".join(f'"{c}"' for c in q.choices)
        if answer is None:
            return Verdict(False, f"Question {number}: write your answer ({letters}) in place of `None`, then run "
                                  "this cell.")
        given = str(answer).strip().lower().strip("()")
        if given not in q.choices:
            return Verdict(False, f"Question {number}: {answer!r} is not one of the choices ({letters}).")
        link = f"[{q.see}]({anchor(q.see)})"
        if given == q.answer:
            return Verdict(True, f"**Question {number}: right.** {q.right} (Shown in {link}.)")
        return Verdict(False, f"**Question {number}: not quite.** {q.wrong[given]} Look again at {link}, "
                              "then try another answer.")

    def check(self, number: int, answer: object) -> Verdict:
        """The verdict, shown as the cell's result."""
        return self.verdict(number, answer)


def quiz(lesson: str) -> Quiz:
    """The quiz of `lesson` (its notebook's name without `.ipynb`)."""
    return Quiz(lesson)
