"""Every lesson can be done in one sitting and keeps the learner doing: its stated minutes (estimated the same way
for all, `course.lessons`), at least two predictions revealed against what ran, and a closing quiz whose every
question is proven both ways here (the right answer accepted, every wrong one rejected with its explanation)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import nbformat
import pytest

from course import lessons
from sandbox.lab.learn import Quiz, anchor

ROOT = Path(__file__).resolve().parents[1]
LESSONS = lessons.lessons()


def _nb(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _headings(nb: nbformat.NotebookNode) -> set[str]:
    return {m.group(1).strip() for c in nb.cells if c.cell_type == "markdown"
            for m in re.finditer(r"^#+\s+(.+)$", c.source, flags=re.M)}


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_a_lesson_states_its_minutes_truthfully_and_fits_one_sitting(path):
    nb = _nb(path)
    estimate, stated = lessons.estimate(nb), lessons.stated_minutes(nb)
    assert stated is not None, f"{path.name}: the opening says 'About **N minutes**'"
    assert math.ceil(estimate["minutes"]) <= stated <= lessons.MAX_MINUTES, (path.name, estimate, stated)
    assert estimate["words"] <= lessons.MAX_WORDS, (path.name, estimate)
    readme = (ROOT / "README.md").read_text()
    row = next(line for line in readme.splitlines() if f"notebooks/{path.name}" in line and line.startswith("|"))
    assert re.search(rf"\| *{stated}( *\+ *\d+)? *\|", row), f"README's minutes for {path.stem} are not {stated}"


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_a_lesson_asks_for_predictions_and_reveals_each_against_what_ran(path):
    nb = _nb(path)
    cells = nb.cells
    predicts = [i for i, c in enumerate(cells) if "predict" in c.metadata.get("tags", [])]
    assert len(predicts) >= 2, f"{path.name}: {len(predicts)} cells tagged predict"
    for i in predicts:
        cell = cells[i]
        assert cell.cell_type == "code", f"{path.name}: a predict cell is where the learner writes a guess"
        names = re.findall(r"^(\w+)\s*=", cell.source, flags=re.M)
        assert names, f"{path.name} cell {i}: a predict cell assigns the guess to a name"
        later = "\n".join(c.source for c in cells[i + 1:] if c.cell_type == "code")
        assert any(re.search(rf"lab\.reveal\(\s*{n}\b", later) for n in names), \
            f"{path.name} cell {i}: no later cell reveals {names} with lab.reveal"


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_a_lesson_closes_with_a_quiz_proven_both_ways(path):
    nb = _nb(path)
    quiz = Quiz(path.stem)
    assert len(quiz.questions) >= 4, f"{path.name}: {len(quiz.questions)} questions"
    assert "Check your understanding" in _headings(nb), f"{path.name}: no 'Check your understanding' section"
    cells = [c for c in nb.cells if "quiz" in c.metadata.get("tags", [])]
    checks = [c for c in cells if c.cell_type == "code"]
    asked = [c for c in cells if c.cell_type == "markdown"]
    assert [re.search(r"quiz\.check\((\d+),", c.source).group(1) for c in checks] == \
        [str(n) for n in range(1, len(quiz.questions) + 1)], f"{path.name}: one quiz.check(n, ...) a question, in order"
    shown = {re.sub(r"^#+\s+", "", h) for h in _headings(nb)}
    for n, q in enumerate(quiz.questions, start=1):
        text = next((c.source for c in asked if re.search(rf"\*\*Q{n}\.", c.source)), None)
        assert text, f"{path.name}: no Markdown quiz cell asks **Q{n}.**"
        block = text.split(f"**Q{n}.", 1)[1].split(f"**Q{n + 1}.", 1)[0]
        assert sorted(re.findall(r"^\s*[-*]?\s*\(([a-z])\)", block, flags=re.M)) == q.choices, (path.name, n)
        assert q.see in shown, f"{path.name} Q{n}: its explanation links to a heading that is not there: {q.see!r}"
        right = quiz.verdict(n, q.answer.upper())
        assert right.accepted and q.right in right.text and anchor(q.see) in right.text
        for letter, why in q.wrong.items():
            wrong = quiz.verdict(n, letter)
            assert not wrong.accepted and why in wrong.text and anchor(q.see) in wrong.text, (path.name, n, letter)
        assert not quiz.verdict(n, None).accepted and not quiz.verdict(n, "zz").accepted


def test_every_quiz_bank_belongs_to_a_lesson():
    banks = {p.stem for p in (ROOT / "sandbox/lab/quizzes").glob("*.toml")}
    assert banks <= {p.stem for p in LESSONS}


def test_the_instructor_guide_plans_each_chapter_with_the_minutes_its_lessons_state():
    """Its chapter table reads "lesson + lesson + exercises": the lessons' parts must be what each lesson states."""
    guide = (ROOT / "docs/instructor/README.md").read_text()
    for chapter in sorted({p.stem[:2] for p in LESSONS}):
        row = next(line for line in guide.splitlines() if line.startswith(f"| {chapter} |"))
        parts = [int(n) for n in re.findall(r"\d+", row.rsplit("|", 2)[1])]
        stated = [lessons.stated_minutes(_nb(p)) for p in LESSONS if p.stem[:2] == chapter]
        assert parts[:len(stated)] == stated, f"docs/instructor/README.md, chapter {chapter}: {parts} against {stated}"


APPROXIMATE = re.compile(r"\b(about|around|roughly|nearly|almost|some)\s+\d+(\.\d+)?(\s*(to|-|or)\s*\d+(\.\d+)?)?"
                         r"\s*(ms|µs|us|s|seconds|milliseconds|microseconds|times|x|%|MB|MiB)(?![\w/])|~\s?\d")


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_the_prose_quotes_no_measured_figure(path):
    """A measured figure lives in an output, which the next run rewrites; prose that quotes one ("about 1.5 to 2
    times", "about 25 ms") drifts from it. Fixed facts (a setting, a view's 0.2 s wait) are stated exactly; a quiz
    may reason from them."""
    quoted = []
    for i, cell in enumerate(_nb(path).cells):
        if cell.cell_type == "markdown" and "quiz" not in cell.metadata.get("tags", []):
            text = re.sub(r"```.*?```", " ", cell.source, flags=re.S)
            quoted += [f"cell {i}: {m.group(0)!r}" for m in APPROXIMATE.finditer(text)]
    assert not quoted, f"{path.name} quotes approximate figures: {quoted}"
