"""Drift: the parts of the course that must agree, checked so they cannot quietly fall apart."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted(p.stem for p in ROOT.glob("notebooks/*.ipynb"))


def stems(folder: str) -> list[str]:
    return sorted(p.stem for p in (ROOT / folder).glob("*.ipynb"))


def test_exercises_and_solutions_hold_the_same_chapters_as_the_lessons():
    assert stems("exercises") == stems("solutions")
    assert set(stems("solutions")) <= set(LESSONS), "an exercise without a lesson"
    # a chapter too long for one sitting goes on in parts: 07-background-tasks, then 07b-task-queues-compared
    assert all(re.fullmatch(r"\d\d[b-z]?-[a-z0-9]+(-[a-z0-9]+)*", s) for s in LESSONS), "stems are NN[b]-kebab-case"


def test_every_chapter_after_start_here_has_exercises():
    chapters = {s[:2] for s in stems("solutions")}
    assert [s for s in LESSONS if s != "00-start-here" and s[:2] not in chapters] == []


def test_readme_course_map_lists_every_notebook_with_minutes():
    readme = (ROOT / "README.md").read_text()
    for stem in LESSONS:
        row = next((line for line in readme.splitlines()
                    if line.startswith("|") and f"notebooks/{stem}.ipynb" in line), None)
        assert row, f"README's course map does not list notebooks/{stem}.ipynb"
        assert re.search(r"\| *\d+ *\|", row), f"README's row for {stem} has no minutes"


def _names(requirements: list[str]) -> dict[str, str]:
    """{normalised name: specifier} from requirement strings."""
    parsed = {}
    for req in requirements:
        req = req.split("#")[0].strip()
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(.*)", req)
        if match:
            parsed[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2).replace(" ", "")
    return parsed


def test_environment_yml_installs_what_pyproject_declares():
    declared = _names(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
    text = (ROOT / "environment.yml").read_text()
    pip_section = text.split("- pip:", 1)[1]
    listed = _names([line.strip()[2:] for line in pip_section.splitlines()
                     if line.strip().startswith("- ") and not line.strip().startswith("- -e")])
    assert listed == declared


def test_python_requirement_agrees():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert pyproject == ">=3.12" and "python>=3.12" in (ROOT / "environment.yml").read_text()


@pytest.mark.parametrize("folder", ["notebooks", "solutions"])
def test_committed_outputs_come_from_a_clean_run(folder):
    for path in sorted((ROOT / folder).glob("*.ipynb")):
        counts = [c.execution_count for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        assert counts == list(range(1, len(counts) + 1)), f"{path.name}: execution counts {counts}"


def test_exercises_carry_no_outputs_and_match_the_generator():
    for path in sorted((ROOT / "exercises").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), path.name
    result = subprocess.run([sys.executable, "-m", "course.cli", "exercises", "--check"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_notebook_opens_with_a_title_and_the_same_setup_cell():
    for path in sorted([*ROOT.glob("notebooks/*.ipynb"), *ROOT.glob("solutions/*.ipynb")]):
        nb = nbformat.read(path, as_version=4)
        assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# "), path.name
        first_code = next(c for c in nb.cells if c.cell_type == "code")
        assert first_code.source == "from sandbox import lab\nawait lab.boot()", path.name
        assert nb.metadata.kernelspec.name == "python3", path.name


def test_code_and_notebooks_are_ruff_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_every_relative_link_in_a_notebook_opens_a_file_of_the_course():
    """JupyterLab (started by `course lab`) serves the repository's folder: a relative link in a notebook opens in
    it when its target is a file inside that folder."""
    broken = []
    for path in sorted([*ROOT.glob("notebooks/*.ipynb"), *ROOT.glob("exercises/*.ipynb"),
                        *ROOT.glob("solutions/*.ipynb")]):
        for cell in nbformat.read(path, as_version=4).cells:
            for target in re.findall(r"\]\(([^)\s]+)\)", cell.source) if cell.cell_type == "markdown" else []:
                if re.match(r"[a-z]+:|#", target):
                    continue
                file = (path.parent / target.split("#")[0]).resolve()
                if not (file.is_relative_to(ROOT) and file.is_file()):
                    broken.append(f"{path.relative_to(ROOT)}: {target}")
    assert not broken, broken
