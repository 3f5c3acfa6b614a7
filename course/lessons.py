"""How long a lesson takes, estimated the same way for every lesson, and what its active parts are.

Minutes = prose words at 150 a minute (technical prose) + code lines at 15 a minute (read before running) + the
seconds its cells took in the committed run + 1 minute per prediction + 1 minute per quiz question. The opening of
a lesson states its minutes ("About **N minutes**"); a test holds that figure at or above this estimate and at most
40. `python -m course.lessons` prints the table.
"""

from __future__ import annotations

import re
import sys
from datetime import datetime
from pathlib import Path

import nbformat

from sandbox.paths import REPO

MAX_MINUTES = 40
MAX_WORDS = 2500
STATED = re.compile(r"About \*\*(\d+) minutes\*\*")


def tagged(nb: nbformat.NotebookNode, tag: str) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if tag in c.metadata.get("tags", [])]


def prose_words(nb: nbformat.NotebookNode) -> int:
    """Words of Markdown, fenced code excluded (counted as code)."""
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    return len(re.sub(r"```.*?```", " ", text, flags=re.S).split())


def code_lines(nb: nbformat.NotebookNode) -> int:
    fenced = "\n".join(re.findall(r"```.*?```", "\n".join(c.source for c in nb.cells if c.cell_type == "markdown"),
                                  flags=re.S))
    cells = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    return sum(1 for line in f"{cells}\n{fenced}".splitlines() if line.strip() and not line.startswith("```"))


def run_seconds(nb: nbformat.NotebookNode) -> float:
    """What the committed run's cells took (nbclient stores each cell's start and end)."""
    total = 0.0
    for cell in nb.cells:
        stamps = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in stamps and "shell.execute_reply" in stamps:
            start, end = (datetime.fromisoformat(stamps[k]) for k in ("iopub.execute_input", "shell.execute_reply"))
            total += (end - start).total_seconds()
    return total


def quiz_questions(nb: nbformat.NotebookNode) -> int:
    return sum(1 for c in tagged(nb, "quiz") if c.cell_type == "code")


def estimate(nb: nbformat.NotebookNode) -> dict[str, float]:
    parts: dict[str, float] = {"words": prose_words(nb), "code lines": code_lines(nb), "run s": round(run_seconds(nb)),
             "predictions": len(tagged(nb, "predict")), "questions": quiz_questions(nb)}
    parts["minutes"] = round(parts["words"] / 150 + parts["code lines"] / 15 + parts["run s"] / 60
                             + parts["predictions"] + parts["questions"], 1)
    return parts


def stated_minutes(nb: nbformat.NotebookNode) -> int | None:
    match = STATED.search(nb.cells[0].source) if nb.cells else None
    return int(match.group(1)) if match else None


def lessons() -> list[Path]:
    return sorted((REPO / "notebooks").glob("*.ipynb"))


def main() -> int:
    print(f"{'lesson':34} {'words':>6} {'code':>5} {'run s':>6} {'pred':>5} {'quiz':>5} {'min':>6} {'stated':>7}")
    for path in lessons():
        nb = nbformat.read(path, as_version=4)
        e = estimate(nb)
        print(f"{path.stem:34} {e['words']:>6} {e['code lines']:>5} {e['run s']:>6} {e['predictions']:>5} "
              f"{e['questions']:>5} {e['minutes']:>6} {stated_minutes(nb) or '-':>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
