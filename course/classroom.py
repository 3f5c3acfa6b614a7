"""`course grade` and `course progress`: grade a whole class folder, or show a learner where they stand.

Each notebook is graded in its own worker process (its own kernel, data directory and time limits), on a copy in a
temporary directory: the learners' files are read, never written, and a notebook that writes into its working
directory writes into the temporary one. One broken notebook never stops the run: it becomes a row of its own.

    python -m course.classroom NOTEBOOK TIMEOUT   # the worker: prints one notebook's report as JSON
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

from course import exercises, grading
from course.notebooks import NotebookError, read
from sandbox.paths import REPO

COLUMNS = ("learner", "chapter", "exercise", "result", "feedback")


@dataclass
class Row:
    learner: str
    chapter: str
    exercise: str
    result: str
    feedback: str = ""


@dataclass
class Graded:
    """One file of the class folder, graded: its rows and a one-line summary for the progress output."""
    path: Path
    learner: str
    rows: list[Row]
    summary: str
    seconds: float = 0.0


def files_of(folder: Path) -> list[Path]:
    """Every file a learner handed in, sorted; hidden files and Jupyter's checkpoints are not hand-ins."""
    found = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        found.append(path)
    return found


def learner_of(path: Path, folder: Path) -> str:
    rel = path.relative_to(folder)
    return rel.parts[0] if len(rel.parts) > 1 else path.stem


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the worker and its kernel, which shares its process group
    except ProcessLookupError:
        pass


def run_worker(path: Path, timeout: int, total: float) -> dict:
    """Grade one notebook in a worker process on a copy in a fresh temporary directory."""
    with tempfile.TemporaryDirectory(prefix="course-grade-") as tmp:
        copy = Path(tmp) / path.name
        shutil.copyfile(path, copy)
        proc = subprocess.Popen([sys.executable, "-m", "course.classroom", str(copy), str(timeout)],
                                cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        try:
            out, err = proc.communicate(timeout=total)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            proc.communicate()
            return {"error": f"grading this notebook took longer than {total:g} s in all; it was stopped"}
        finally:
            _kill_group(proc)  # leave no kernel behind
        try:
            return json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            last = (err.strip().splitlines() or ["no output"])[-1]
            return {"error": f"the grader itself failed on this notebook ({last})"}


def grade_file(path: Path, folder: Path, timeout: int, total: float) -> Graded:
    learner = learner_of(path, folder)
    rel = path.relative_to(folder)
    start = time.perf_counter()

    def error(chapter: str, message: str, result: str = "error") -> Graded:
        return Graded(path, learner, [Row(learner, chapter, "-", result, message)], f"{result}: {message}",
                      time.perf_counter() - start)

    if path.suffix != ".ipynb":
        return error("-", f"{rel}: not a notebook (expected a .ipynb file)", "skipped")
    try:  # the clear messages, with the learner's own path in them, come from the parent
        chapter = grading.chapter_of(path, read(path))
    except NotebookError as exc:
        return error("-", str(exc).replace(str(path), str(rel)))
    report = run_worker(path, timeout, total)
    if "error" in report:
        return error(chapter, report["error"])
    rows = []
    if report.get("stopped"):
        rows.append(Row(learner, chapter, "-", "error", report["stopped"]))
    rows += [Row(learner, chapter, r["exercise"], r["status"], r["feedback"]) for r in report["results"]]
    done = sum(r["status"] == "passed" for r in report["results"])
    summary = f"{done} of {len(report['results'])} passed"
    if report.get("stopped"):
        summary += f" (stopped: {report['stopped']})"
    return Graded(path, learner, rows, summary, time.perf_counter() - start)


def grade_folder(folder: Path, timeout: int, total: float, jobs: int = 1, out: TextIO = sys.stdout) -> list[Graded]:
    """Grade every file of `folder`, `jobs` at a time (each in its own worker process), printing a line per file as
    it finishes; the result keeps the folder's order."""
    paths = files_of(folder)
    done = 0

    def one(path: Path) -> Graded:
        nonlocal done
        g = grade_file(path, folder, timeout, total)
        with lock:
            done += 1
            print(f"[{done}/{len(paths)}] {path.relative_to(folder)}: {g.summary} ({g.seconds:.1f} s)", file=out,
                  flush=True)
        return g

    lock = threading.Lock()
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        return list(pool.map(one, paths))


def default_jobs() -> int:
    """One notebook per core: a notebook's kernel and servers keep about one core busy."""
    return os.cpu_count() or 1


def table(rows: list[Row], width: int = 70) -> str:
    def cut(text: str) -> str:
        text = " ".join(text.split())
        return text if len(text) <= width else text[:width - 1] + "\u2026"

    cells = [COLUMNS] + [tuple(cut(v) for v in asdict(r).values()) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)).rstrip() for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_csv(rows: list[Row], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        writer.writerows(tuple(asdict(r).values()) for r in rows)


def progress(folder: Path, timeout: int, total: float, out: TextIO = sys.stdout) -> int:
    """Per chapter, which exercises pass; returns how many passed in all."""
    found: dict[str, Path] = {}
    for path in sorted(folder.glob("*.ipynb")):
        try:
            found.setdefault(grading.chapter_of(path, read(path)), path)
        except NotebookError:
            continue
    passed = count = 0
    for chapter in exercises.chapters():
        if chapter not in found:
            print(f"{chapter}: no notebook in {folder}", file=out)
            continue
        g = grade_file(found[chapter], folder, timeout, total)
        results = [r for r in g.rows if r.exercise != "-"]
        if not results:
            print(f"{chapter}: {g.summary}", file=out, flush=True)
            continue
        done = sum(r.result == "passed" for r in results)
        marks = ", ".join(f"{r.exercise} {grading.STATUS_MARK.get(r.result, '?')}" for r in results)
        stopped = [r.feedback for r in g.rows if r.exercise == "-"]
        note = f"  (stopped: {stopped[0]})" if stopped else ""
        print(f"{chapter}: {done} of {len(results)} passed ({marks}){note}", file=out, flush=True)
        passed, count = passed + done, count + len(results)
    print(f"total: {passed} of {count} exercises passed", file=out)
    return passed


def _worker(argv: list[str]) -> int:
    path, timeout = Path(argv[0]), int(argv[1])
    try:
        report = grading.check(path, timeout=timeout)
    except NotebookError as exc:
        print(json.dumps({"error": str(exc)}))
        return 0
    print(json.dumps({"chapter": report.chapter, "stopped": report.stopped,
                      "results": [asdict(r) for r in report.results]}))
    return 0


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1:]))
