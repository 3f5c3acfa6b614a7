"""The `course` command as a learner meets it: clear messages for bad input, never a traceback, and never
an overwrite without a backup."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course import exercises
from sandbox.paths import REPO

pytestmark = pytest.mark.slow  # `course` commands and their kernels

ROOT = REPO
QUICK = "02-djangos-async-support"  # the chapter whose notebooks run fastest (no servers): for tests of the command


def course(*args: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    """The `course` command of the repository at `cwd` (its own `sandbox` package comes first on the path)."""
    return subprocess.run([sys.executable, "-m", "course.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env=env)


@pytest.fixture
def copy(tmp_path) -> Path:
    """A copy of the course's code, solutions and exercises: tests that write exercises/ write there, never into
    the working tree (so that the tests can run in any order, on any worker)."""
    target = tmp_path / "course"
    for folder in ("sandbox", "course", "solutions", "exercises"):
        shutil.copytree(ROOT / folder, target / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def test_check_refuses_bad_input_with_a_clear_message(tmp_path):
    """One `course check` of five bad files: each gets its own clear message, none a traceback."""
    cases = [("01-sync-vs-async.ipynb", "{not json", "not a readable notebook"),
             ("02-djangos-async-support.ipynb", '{"cells": 3}', "not a readable notebook"),
             ("notes.txt", "hello", "not a notebook (expected a .ipynb file)"),
             ("holiday-photos.ipynb", None, "not an exercise notebook of this course"),
             ("missing.ipynb", "", "no such file")]
    for name, content, _ in cases:
        path = tmp_path / name
        if content is None:
            nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")]), path)
        elif content:
            path.write_text(content)
    result = course("check", *(str(tmp_path / name) for name, _, _ in cases))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    for name, _, message in cases:
        assert any(name in line and message in line for line in lines), (name, result.stderr)


def test_check_reports_each_exercise_of_a_stub(tmp_path):
    stem = QUICK
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


def test_reset_backs_up_the_learners_work_then_restores(tmp_path, copy):
    stem = exercises.chapters()[0]
    target = copy / "exercises" / f"{stem}.ipynb"
    original = target.read_text()
    data_root = tmp_path / "data"
    env = {**__import__("os").environ, "COURSE_DATA_ROOT": str(data_root)}
    target.write_text(original.replace("raise NotImplementedError", "return 42  # my attempt", 1))
    result = course("reset", stem.split("-")[0], cwd=copy, env=env)
    assert result.returncode == 0, result.stderr
    backups = list((data_root / "backups").glob(f"{stem}-*.ipynb"))
    assert len(backups) == 1 and "return 42  # my attempt" in backups[0].read_text()
    assert target.read_text() == original == exercises.pristine(stem)
    again = course("reset", stem, cwd=copy, env=env)  # pristine already: nothing to back up
    assert again.returncode == 0 and len(list((data_root / "backups").iterdir())) == 1


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


def test_generator_check_mode_catches_a_stale_exercise_and_the_generator_mends_it(copy):
    stem = exercises.chapters()[0]
    target = copy / "exercises" / f"{stem}.ipynb"
    original = target.read_text()
    target.write_text(original.replace("YOUR CODE HERE", "YOUR CODE THERE", 1))
    result = course("exercises", "--check", cwd=copy)
    assert result.returncode == 1 and f"stale: exercises/{stem}.ipynb" in result.stdout
    assert target.read_text() != original, "--check must not write"
    assert course("exercises", cwd=copy).returncode == 0 and target.read_text() == original


def test_stub_replaces_each_block_at_its_indentation():
    source = ("async def f(x):\n    \"\"\"doc\"\"\"\n    ### BEGIN SOLUTION\n    return await g(x)\n"
              "    ### END SOLUTION\n\n\n### BEGIN SOLUTION\ny = 1\n### END SOLUTION\nprint(y)")
    assert exercises.stub(source) == ("async def f(x):\n    \"\"\"doc\"\"\"\n    # YOUR CODE HERE\n"
                                      "    raise NotImplementedError\n\n\n# YOUR CODE HERE\nraise NotImplementedError\n"
                                      "print(y)")


def test_check_stops_an_endless_await_and_reports_it(tmp_path):
    """A top-level await cannot be interrupted, so the kernel is shut down instead. (An endless sync loop, which
    can be interrupted, and a kernel that dies: tests/course/test_classroom.py, through the same `grading.check`.)"""
    endless = "import asyncio\nawait asyncio.sleep(3600)"
    stem = QUICK
    nb = nbformat.read(ROOT / "exercises" / f"{stem}.ipynb", as_version=4)
    nb.cells.insert(2, nbformat.v4.new_code_cell(endless))
    path = tmp_path / f"{stem}.ipynb"
    nbformat.write(nb, path)
    result = course("check", "--timeout", "2", str(path))
    assert result.returncode == 1, result.stderr
    ids = exercises.exercise_ids(nb)
    assert "a cell ran longer than 2 s" in result.stdout and result.stdout.count("not run") == len(ids)


def test_lab_serves_the_whole_course_and_opens_start_here_with_the_learners_options(monkeypatch):
    """`course lab` becomes JupyterLab (exec), rooted at the course's folder wherever it is typed."""
    from course import cli

    calls = []
    monkeypatch.setattr(cli.os, "execv", lambda path, argv: calls.append(argv))
    monkeypatch.chdir("/")
    cli.main(["lab", "--port", "8890", "--no-browser"])
    (argv,) = calls
    assert argv[1:4] == ["-m", "jupyter", "lab"]
    assert f"--ServerApp.root_dir={ROOT}" in argv
    assert "--LabApp.default_url=/lab/tree/notebooks/00-start-here.ipynb" in argv
    assert argv[-3:] == ["--port", "8890", "--no-browser"]
    assert (ROOT / "notebooks" / "00-start-here.ipynb").is_file()


def test_other_commands_refuse_unknown_options():
    from course import cli

    with pytest.raises(SystemExit) as exit_:
        cli.main(["doctor", "--port", "8890"])
    assert exit_.value.code == 2
