"""`course grade` and `course progress`: a whole class folder graded, every broken hand-in a row of its own,
and the learners' files never touched."""

from __future__ import annotations

import csv
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course import exercises
from sandbox.checks import contract
from sandbox.paths import REPO

pytestmark = pytest.mark.slow  # kernels

ROOT = REPO
CH1, CH2 = "01-sync-vs-async", "02-djangos-async-support"


def course(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "course.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def stub_with(cell: str) -> nbformat.NotebookNode:
    """Chapter 02's stub (its notebooks run fastest) with `cell` before its first check."""
    nb = nbformat.read(ROOT / "exercises" / f"{CH2}.ipynb", as_version=4)
    first_check = next(i for i, c in enumerate(nb.cells) if contract.CHECK_TAG in c.metadata.get("tags", []))
    nb.cells.insert(first_check, nbformat.v4.new_code_cell(cell))
    return nb


def class_folder(root: Path) -> Path:
    folder = root / "class"
    for learner in ("alice", "bob", "carol", "dave", "erin", "frank"):
        (folder / learner).mkdir(parents=True)
    shutil.copy(ROOT / "solutions" / f"{CH2}.ipynb", folder / "alice" / "alice.ipynb")  # renamed by an upload system
    shutil.copy(ROOT / "exercises" / f"{CH1}.ipynb", folder / "bob" / f"{CH1}.ipynb")  # a second chapter
    (folder / "carol" / "notes.txt").write_text("my notes")
    (folder / "carol" / f"{CH1}.ipynb").write_text("{not json")
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")]),
                   folder / "dave" / "holiday.ipynb")
    nbformat.write(stub_with("while True:\n    pass"), folder / "erin" / f"{CH2}.ipynb")
    nbformat.write(stub_with("import os\nos._exit(1)"), folder / "frank" / f"{CH2}.ipynb")
    return folder


def hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_grade_a_class_folder(tmp_path):
    folder = class_folder(tmp_path)
    before = hashes(folder)
    target = tmp_path / "out" / "grades.csv"
    result = course("grade", str(folder), "--timeout", "5", "--csv", str(target))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Traceback" not in output
    assert hashes(folder) == before, "course grade modified the learners' files"
    assert "[1/7]" in result.stdout and "[7/7]" in result.stdout  # graded two at a time here (2 cores)

    with target.open(newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == ("learner", "chapter", "exercise", "result", "feedback")
        rows = list(reader)

    def of(learner: str, chapter: str | None = None) -> list[dict]:
        return [r for r in rows if r["learner"] == learner and (chapter is None or r["chapter"] == chapter)]

    ids2 = exercises.exercise_ids(nbformat.read(ROOT / "solutions" / f"{CH2}.ipynb", as_version=4))
    alice = of("alice")
    assert [r["exercise"] for r in alice] == ids2 and {r["result"] for r in alice} == {"passed"}, alice
    assert {r["chapter"] for r in alice} == {CH2}, "the chapter is recognised from the notebook's check cells"
    bob = of("bob", CH1)
    assert bob and {r["result"] for r in bob} == {"not attempted"}, bob
    carol = of("carol")
    assert {(r["exercise"], r["result"]) for r in carol} == {("-", "skipped"), ("-", "error")}
    assert any("not a notebook" in r["feedback"] for r in carol)
    assert any("not a readable notebook" in r["feedback"] for r in carol)
    assert [(r["exercise"], r["result"]) for r in of("dave")] == [("-", "error")]
    assert "not an exercise notebook of this course" in of("dave")[0]["feedback"]
    for learner, message in (("erin", "a cell ran longer than 5 s"), ("frank", "the kernel died")):
        stopped = [r for r in of(learner) if r["exercise"] == "-"]
        assert len(stopped) == 1 and stopped[0]["result"] == "error" and message in stopped[0]["feedback"]
        assert {r["result"] for r in of(learner) if r["exercise"] != "-"} == {"not run"}
    assert "learner" in result.stdout and "feedback" in result.stdout  # the table


def test_grade_refuses_a_bad_folder(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    (tmp_path / "file.txt").write_text("x")
    calls = [("grade", str(tmp_path / "nope")), ("grade", str(tmp_path / "file.txt")),
             ("grade", str(tmp_path), "--csv", str(tmp_path / "grades.csv")), ("grade", str(tmp_path), "--jobs", "0")]
    with ThreadPoolExecutor(len(calls)) as pool:  # each start of the command costs seconds: run them together
        missing, not_dir, inside, no_jobs = pool.map(lambda args: course(*args), calls)
    assert no_jobs.returncode == 2 and "--jobs: give at least 1" in no_jobs.stderr
    assert missing.returncode == 2 and "no such folder" in missing.stderr
    assert not_dir.returncode == 2 and "not a folder" in not_dir.stderr
    assert inside.returncode == 2 and "inside the learners' folder" in inside.stderr
    assert not (tmp_path / "grades.csv").exists()
    for r in (missing, not_dir, inside, no_jobs):
        assert "Traceback" not in r.stdout + r.stderr


def test_progress_of_a_stub(tmp_path):
    shutil.copy(ROOT / "exercises" / f"{CH2}.ipynb", tmp_path / f"{CH2}.ipynb")
    result = course("progress", str(tmp_path), "--timeout", "30")
    assert result.returncode == 0, result.stderr
    ids = exercises.exercise_ids(nbformat.read(tmp_path / f"{CH2}.ipynb", as_version=4))
    assert f"{CH2}: 0 of {len(ids)} passed (" in result.stdout
    assert all(ex in result.stdout for ex in ids)
    assert f"total: 0 of {len(ids)} exercises passed" in result.stdout
