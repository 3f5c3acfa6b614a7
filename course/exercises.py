"""The exercise generator: `solutions/NN-slug.ipynb` is the single source; `exercises/NN-slug.ipynb` is made
from it by replacing each `### BEGIN SOLUTION` ... `### END SOLUTION` block with a stub and clearing outputs.

`course exercises` writes them; `course exercises --check` fails when a committed exercise is stale.
"""

from __future__ import annotations

import copy
import hashlib
import re
from pathlib import Path

import nbformat

from sandbox.checks.contract import exercise_of
from sandbox.paths import REPO

SOLUTIONS, EXERCISES = REPO / "solutions", REPO / "exercises"
BLOCK = re.compile(r"^([ \t]*)### BEGIN SOLUTION\n.*?^[ \t]*### END SOLUTION\n?", re.S | re.M)


def stub(source: str) -> str:
    """Replace every solution block with a stub at the block's own indentation."""
    def replace(match: re.Match) -> str:
        indent = match.group(1)
        return f"{indent}# YOUR CODE HERE\n{indent}raise NotImplementedError\n"
    return BLOCK.sub(replace, source).rstrip("\n")


HINT = re.compile(r"<details>.*?</details>", re.S)


def tasks(nb: nbformat.NotebookNode) -> dict[str, str]:
    """{exercise id: its task}: the markdown between the code cell before the exercise's solution cell and that
    cell, without the folded hints."""
    found, text, ids = {}, [], iter(exercise_ids(nb))
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            text.append(cell.source)
        elif "### BEGIN SOLUTION" in cell.source:
            found[next(ids)] = HINT.sub("", "\n\n".join(text)).strip()
            text = []
        else:
            text = []
    return found


def hints(nb: nbformat.NotebookNode) -> dict[str, list[str]]:
    """{exercise id: its folded hints (`<details>` blocks), in order}."""
    found, text, ids = {}, [], iter(exercise_ids(nb))
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            text.append(cell.source)
        elif "### BEGIN SOLUTION" in cell.source:
            found[next(ids)] = HINT.findall("\n\n".join(text))
            text = []
        else:
            text = []
    return found


def task_hash(task: str) -> str:
    """A short fingerprint of a task's text: a check's requirements table names the text it was written from."""
    return hashlib.sha256(" ".join(task.split()).encode()).hexdigest()[:12]


def exercise_ids(nb: nbformat.NotebookNode) -> list[str]:
    """The exercises of a notebook, in order, from its check cells' metadata."""
    return [ex for c in nb.cells if (ex := exercise_of(c))]


def make_exercise(solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    nb = copy.deepcopy(solution)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = stub(cell.source)
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("widgets", None)
    return nb


def render(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb) + "\n"


def build(check: bool = False) -> list[Path]:
    """Write (or, with check, compare) every exercise notebook; returns the ones that were stale."""
    stale = []
    EXERCISES.mkdir(exist_ok=True)
    for source in sorted(SOLUTIONS.glob("*.ipynb")):
        target = EXERCISES / source.name
        text = render(make_exercise(nbformat.read(source, as_version=4)))
        if not target.exists() or target.read_text() != text:
            stale.append(target)
            if not check:
                target.write_text(text)
    return stale


def pristine(stem: str) -> str:
    """The generated exercise notebook for a chapter stem, as text."""
    return render(make_exercise(nbformat.read(SOLUTIONS / f"{stem}.ipynb", as_version=4)))


def chapters() -> list[str]:
    return [p.stem for p in sorted(SOLUTIONS.glob("*.ipynb"))]
