"""Grade a class of 30 learner notebooks with `course grade`, one at a time and then one per core, and time both.

Run it as `uv run python benchmarks/grading.py [--learners 30]`. The class is a mix a teacher meets: solutions
(right), planted wrong answers, untouched stubs, a notebook renamed by an upload system, one that is not JSON and
one that exits its kernel, over chapters 01, 02 and 04 (the chapters whose notebooks start no server, so the
figure is the grader's, not a server's). It prints the wall time of each run and the speed-up.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from course import exercises
from sandbox.checks.contract import CHECK_TAG
from sandbox.paths import REPO
from tests.planted import PLANTED
from tests.probes import exercise_cells, replace_block

CHAPTERS = ("01-sync-vs-async", "02-djangos-async-support", "04-async-orm")


def wrong(chapter: str) -> nbformat.NotebookNode:
    """The chapter's solution with its first exercise answered by the first planted wrong answer."""
    nb = nbformat.read(REPO / "solutions" / f"{chapter}.ipynb", as_version=4)
    first = next(iter(exercise_cells(nb)))
    block = exercise_cells(nb)[first][0]
    block.source = replace_block(block.source, PLANTED[chapter][first][0].code)
    return nb


def broken_kernel(chapter: str) -> nbformat.NotebookNode:
    """The chapter's stub with a cell that exits the kernel before the first check."""
    nb = nbformat.read(REPO / "exercises" / f"{chapter}.ipynb", as_version=4)
    first = next(i for i, c in enumerate(nb.cells) if CHECK_TAG in c.metadata.get("tags", []))
    nb.cells.insert(first, nbformat.v4.new_code_cell("import os\nos._exit(1)"))
    return nb


def class_folder(root: Path, learners: int) -> Path:
    """`learners` subfolders, one hand-in each, cycling through the kinds above and the chapters."""
    folder = root / "class"
    kinds = ("right", "wrong", "stub", "right", "wrong", "renamed", "stub", "right", "not-json", "dies")
    for n in range(learners):
        kind, chapter = kinds[n % len(kinds)], CHAPTERS[n % len(CHAPTERS)]
        home = folder / f"learner{n + 1:02d}"
        home.mkdir(parents=True)
        target = home / f"{chapter}.ipynb"
        if kind in ("right", "renamed"):
            shutil.copy(REPO / "solutions" / f"{chapter}.ipynb", home / "upload.ipynb" if kind == "renamed" else target)
        elif kind == "wrong":
            nbformat.write(wrong(chapter), target)
        elif kind == "stub":
            shutil.copy(exercises.EXERCISES / f"{chapter}.ipynb", target)
        elif kind == "not-json":
            target.write_text("{not json")
        else:
            nbformat.write(broken_kernel(chapter), target)
    return folder


def grade(folder: Path, jobs: int, out: Path) -> float:
    """Seconds `course grade` took for the whole folder at `jobs`."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "course.cli", "grade", str(folder), "--jobs", str(jobs), "--timeout", "60",
                    "--csv", str(out)], cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, default=30)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="grading-bench-") as tmp:
        folder = class_folder(Path(tmp), args.learners)
        one = grade(folder, 1, Path(tmp) / "one.csv")
        many = grade(folder, cores, Path(tmp) / "many.csv")
        rows = (Path(tmp) / "many.csv").read_text().count("\n") - 1
    print(f"{args.learners} notebooks ({rows} rows): --jobs 1 {one:.1f} s, --jobs {cores} (the default) {many:.1f} s, "
          f"{one / many:.2f}x faster")


if __name__ == "__main__":
    main()
