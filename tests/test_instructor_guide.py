"""The instructor guide (docs/instructor/) stays in step with the notebooks and the planted wrong answers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.planted import PLANTED

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "instructor"
STEMS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
SECTIONS = [
    "## Objectives",
    "## Timing",
    "## Live demos worth running in class",
    "## Mistakes learners make",
    "## Questions for discussion",
    "## Notes for slow machines",
    "## When a machine lacks Redis or PostgreSQL",
]


def section(text: str, heading: str) -> str:
    """The body under `heading`, up to the next level-2 heading."""
    start = text.index(heading + "\n") + len(heading) + 1
    following = re.search(r"^## ", text[start:], flags=re.MULTILINE)
    return text[start:start + following.start()] if following else text[start:]


def test_there_are_chapters():
    assert STEMS, "no notebooks/NN-*.ipynb found"


@pytest.mark.parametrize("stem", STEMS)
def test_every_chapter_has_a_page_with_every_section(stem):
    page = GUIDE / f"{stem}.md"
    assert page.is_file(), f"docs/instructor/{stem}.md is missing"
    lines = page.read_text(encoding="utf-8").splitlines()
    for heading in SECTIONS:
        assert heading in lines, f"{page.name} has no '{heading}' section"


@pytest.mark.parametrize("stem", STEMS)
def test_page_lists_every_planted_mistake(stem):
    mistakes = section((GUIDE / f"{stem}.md").read_text(encoding="utf-8"), "## Mistakes learners make")
    missing = [p.mistake for planted in PLANTED.get(stem, {}).values() for p in planted if p.mistake not in mistakes]
    assert not missing, f"{stem}.md's 'Mistakes learners make' misses planted mistakes: {missing}"


def test_every_planted_chapter_has_a_notebook():
    orphans = set(PLANTED) - set(STEMS)
    assert not orphans, f"planted answers for chapters without a notebook: {orphans}"


def test_index_links_every_page():
    index = (GUIDE / "README.md").read_text(encoding="utf-8")
    links = set(re.findall(r"\]\(([^)#]+\.md)\)", index))
    missing = [f"{stem}.md" for stem in STEMS if f"{stem}.md" not in links]
    assert not missing, f"docs/instructor/README.md does not link {missing}"
    for link in links:
        assert (GUIDE / link).is_file(), f"README.md links a missing page: {link}"
