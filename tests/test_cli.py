"""The `course` command as a learner meets it: clear messages for bad input, never a traceback, and never
an overwrite without a backup."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from sandbox.lab import exercises

ROOT = Path(__file__).resolve().parents[1]


def course(*args: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sandbox.lab.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env=env)


@pytest.mark.parametrize(("name", "content", "message"), [
    ("01-sync-vs-async.ipynb", "{not json", "not a readable notebook"),
    ("01-sync-vs-async.ipynb", '{"cells": 3}', "not a readable notebook"),
    ("notes.txt", "hello", "not a notebook (expected a .ipynb file)"),
    ("holiday-photos.ipynb", None, "not an exercise notebook of this course"),
    ("missing.ipynb", "", "no such file"),
])
def test_check_refuses_bad_input_with_a_clear_message(tmp_path, name, content, message):
    path = tmp_path / name
    if content is None:
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")]), path)
    elif content:
        path.write_text(content)
    result = course("check", str(path))
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr + result.stdout


def test_check_reports_each_exercise_of_a_stub(tmp_path):
    stem = exercises.chapters()[0]
    path = tmp_path / f"{stem}.ipynb"
    shutil.copy(ROOT / "exercises" / f"{stem}.ipynb", path)
    before = path.read_bytes()
    result = course("check", str(path))
    assert result.returncode == 1
    ids = exercises.exercise_ids(nbformat.read(path, as_version=4))
    for ex in ids:
        assert f"{ex}" in result.stdout
    assert result.stdout.count("not attempted") == len(ids)
    assert f"0 of {len(ids)} exercises passed" in result.stdout
    assert path.read_bytes() == before, "course check modified the learner's notebook"


def test_check_survives_a_kernel_that_dies(tmp_path):
    stem = exercises.chapters()[0]
    nb = nbformat.read(ROOT / "solutions" / f"{stem}.ipynb", as_version=4)
    first_check = next(i for i, c in enumerate(nb.cells) if exercises.CHECK_TAG in c.metadata.get("tags", []))
    nb.cells.insert(first_check, nbformat.v4.new_code_cell("import os\nos._exit(1)"))
    path = tmp_path / f"{stem}.ipynb"
    nbformat.write(nb, path)
    result = course("check", str(path))
    assert result.returncode == 1 and "the kernel died" in result.stdout and "Traceback" not in result.stdout


def test_reset_backs_up_the_learners_work_then_restores(tmp_path):
    stem = exercises.chapters()[0]
    target = ROOT / "exercises" / f"{stem}.ipynb"
    original = target.read_text()
    data_root = tmp_path / "data"
    env = {**__import__("os").environ, "COURSE_DATA_ROOT": str(data_root)}
    try:
        target.write_text(original.replace("raise NotImplementedError", "return 42  # my attempt", 1))
        result = course("reset", stem.split("-")[0], env=env)
        assert result.returncode == 0, result.stderr
        backups = list((data_root / "backups").glob(f"{stem}-*.ipynb"))
        assert len(backups) == 1 and "return 42  # my attempt" in backups[0].read_text()
        assert target.read_text() == exercises.pristine(stem)
        again = course("reset", stem, env=env)  # pristine already: nothing to back up
        assert again.returncode == 0 and len(list((data_root / "backups").iterdir())) == 1
    finally:
        target.write_text(original)


def test_reset_of_an_unknown_chapter_is_a_clear_error():
    result = course("reset", "99")
    assert result.returncode == 2 and "no single chapter matches '99'" in result.stderr


def test_doctor_reports_every_piece_with_a_fix_for_what_is_missing(tmp_path):
    import os

    result = course("doctor")
    for name in ("Python", "Django", "Jupyter kernel", "Redis", "PostgreSQL"):
        assert name in result.stdout
    assert result.returncode == 0 and "ready for the course" in result.stdout
    empty = {**os.environ, "PATH": str(Path(sys.executable).parent)}  # no redis-server on this PATH
    missing = course("doctor", env=empty)
    if "Redis           ok" not in missing.stdout:
        assert "fix: " in missing.stdout and "redis" in missing.stdout


def test_generator_check_mode_catches_a_stale_exercise():
    stem = exercises.chapters()[0]
    target = ROOT / "exercises" / f"{stem}.ipynb"
    original = target.read_text()
    assert course("exercises", "--check").returncode == 0
    try:
        target.write_text(original.replace("YOUR CODE HERE", "YOUR CODE THERE", 1))
        result = course("exercises", "--check")
        assert result.returncode == 1 and f"stale: exercises/{stem}.ipynb" in result.stdout
    finally:
        target.write_text(original)


def test_stub_replaces_each_block_at_its_indentation():
    source = ("async def f(x):\n    \"\"\"doc\"\"\"\n    ### BEGIN SOLUTION\n    return await g(x)\n"
              "    ### END SOLUTION\n\n\n### BEGIN SOLUTION\ny = 1\n### END SOLUTION\nprint(y)")
    assert exercises.stub(source) == ("async def f(x):\n    \"\"\"doc\"\"\"\n    # YOUR CODE HERE\n"
                                      "    raise NotImplementedError\n\n\n# YOUR CODE HERE\nraise NotImplementedError\n"
                                      "print(y)")


@pytest.mark.parametrize("endless", ["while True:\n    pass", "import asyncio\nawait asyncio.sleep(3600)"])
def test_check_stops_an_endless_cell_and_reports_it(tmp_path, endless):
    """A sync loop can be interrupted; a top-level await cannot, so the kernel is shut down instead."""
    stem = exercises.chapters()[0]
    nb = nbformat.read(ROOT / "exercises" / f"{stem}.ipynb", as_version=4)
    nb.cells.insert(2, nbformat.v4.new_code_cell(endless))
    path = tmp_path / f"{stem}.ipynb"
    nbformat.write(nb, path)
    result = course("check", "--timeout", "2", str(path))
    assert result.returncode == 1, result.stderr
    assert "a cell ran longer than 2 s" in result.stdout and result.stdout.count("not run") == 3
