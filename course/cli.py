"""The `course` command: open the course in JupyterLab, check and reset exercises, diagnose the machine, and (for
maintainers) regenerate exercises and re-run notebooks."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

# nbformat validates with jsonschema, which imports rfc3987_syntax when it is installed (JupyterLab's dependencies
# install it) and spends 1.2 s building a grammar for IRI formats no notebook uses: every command would pay it.
# None in sys.modules makes `import rfc3987_syntax` fail at once (jsonschema expects that); typeshed types the values
# as modules only, hence the ignore.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]

import nbformat  # noqa: E402

from course import classroom, doctor, exercises, grading  # noqa: E402
from course.notebooks import NotebookError, execute, read  # noqa: E402
from sandbox.paths import DATA_ROOT, REPO  # noqa: E402

START_HERE = "notebooks/00-start-here.ipynb"


def cmd_lab(args: argparse.Namespace) -> int:
    """JupyterLab on the whole course (lessons, exercises, solutions, docs), opened at the start-here notebook.

    `jupyter lab notebooks/00-start-here.ipynb` alone would serve only `notebooks/` (Jupyter takes a file's folder
    as its root when no root is set), and every link to `../exercises/` would be a 404; this serves the course's
    folder wherever it is started from. Any other option goes to JupyterLab, for example `course lab --port 8890`.
    """
    command = [sys.executable, "-m", "jupyter", "lab", f"--ServerApp.root_dir={REPO}",
               f"--LabApp.default_url=/lab/tree/{START_HERE}", *args.jupyter_options]
    if os.name == "posix":
        os.execv(sys.executable, command)  # JupyterLab takes over this process: Ctrl-C reaches it alone
    return subprocess.call(command)


def cmd_check(args: argparse.Namespace) -> int:
    code = 0
    for path in args.notebooks:
        try:
            report = grading.check(Path(path), timeout=args.timeout)
        except NotebookError as exc:
            print(f"course check: {exc}", file=sys.stderr)
            code = 2
            continue
        print(report.render())
        code = max(code, 0 if report.ok else 1)
    return code


def _chapter(name: str) -> str:
    stem = Path(name).stem
    matches = [c for c in exercises.chapters() if c == stem or c.startswith(stem + "-") or c.split("-")[0] == stem]
    if len(matches) != 1:
        raise NotebookError(f"no single chapter matches {name!r}; chapters with exercises: "
                            + ", ".join(exercises.chapters()))
    return matches[0]


def cmd_reset(args: argparse.Namespace) -> int:
    try:
        stem = _chapter(args.chapter)
    except NotebookError as exc:
        print(f"course reset: {exc}", file=sys.stderr)
        return 2
    target = exercises.EXERCISES / f"{stem}.ipynb"
    pristine = exercises.pristine(stem)
    if target.exists() and target.read_text() != pristine:
        backups = DATA_ROOT / "backups"
        backups.mkdir(parents=True, exist_ok=True)
        backup = backups / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}.ipynb"
        shutil.copy2(target, backup)
        print(f"your work is saved in {backup}")
    target.write_text(pristine)
    print(f"{target} is back to its pristine state")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    findings = doctor.diagnose()
    print(doctor.report(findings))
    return 0 if all(f.ok for f in findings if f.required) else 1


def cmd_exercises(args: argparse.Namespace) -> int:
    stale = exercises.build(check=args.check)
    for path in stale:
        print(f"{'stale' if args.check else 'wrote'}: {path.relative_to(exercises.REPO)}")
    if args.check and stale:
        print("exercises/ is out of date with solutions/: run `course exercises`", file=sys.stderr)
        return 1
    return 0


def cmd_execute(args: argparse.Namespace) -> int:
    """Maintainers: re-run lesson or solution notebooks top to bottom and store their outputs."""
    for name in args.notebooks:
        path = Path(name).resolve()
        if path.parent.name == "exercises":
            print(f"course execute: {name} is a generated exercise; execute its solution instead", file=sys.stderr)
            return 2
        nb = read(path)
        start = time.perf_counter()
        stopped = execute(nb, path, allow_errors=False, timeout=args.timeout)
        if stopped:
            print(f"course execute: {name}: {stopped}", file=sys.stderr)
            return 1
        nbformat.write(nb, path)
        print(f"executed {name} in {time.perf_counter() - start:.1f} s")
    return 0


def _folder(command: str, name: str) -> Path | None:
    folder = Path(name)
    if not folder.exists():
        print(f"course {command}: {name}: no such folder", file=sys.stderr)
        return None
    if not folder.is_dir():
        print(f"course {command}: {name}: not a folder (give the folder that holds the notebooks)", file=sys.stderr)
        return None
    return folder.resolve()


def _jobs(text: str) -> int:
    """--jobs: a whole number of at least 1."""
    try:
        jobs = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if jobs < 1:
        raise argparse.ArgumentTypeError("give at least 1")
    return jobs


def _total(args: argparse.Namespace) -> float:
    return args.total if args.total else max(60, 10 * args.timeout)


def cmd_grade(args: argparse.Namespace) -> int:
    """Teachers: grade every notebook of a class folder, one row per exercise, into a table and a CSV."""
    folder = _folder("grade", args.folder)
    if folder is None:
        return 2
    target = Path(args.csv).resolve()
    if target.is_relative_to(folder):
        print(f"course grade: {args.csv} is inside the learners' folder; write the grades elsewhere", file=sys.stderr)
        return 2
    graded = classroom.grade_folder(folder, args.timeout, _total(args), args.jobs)
    rows = [row for g in graded for row in g.rows]
    print()
    print(classroom.table(rows) if rows else f"no files in {folder}")
    classroom.write_csv(rows, target)
    print(f"\n{len(graded)} files graded; grades written to {target}")
    return 0


def cmd_progress(args: argparse.Namespace) -> int:
    folder = _folder("progress", args.folder)
    if folder is None:
        return 2
    classroom.progress(folder, args.timeout, _total(args))
    return 0


def cmd_site(args: argparse.Namespace) -> int:
    """Build the published course: every notebook as HTML with its stored outputs, in order, with navigation."""
    from course.site import build_site

    pages = build_site(Path(args.out).resolve())
    print(f"{len(pages)} pages written; open {Path(args.out) / 'index.html'}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="course", description="Async Django, hands-on: the course's own tools.")
    sub = p.add_subparsers(dest="command", required=True)
    lab = sub.add_parser("lab", help="open the course in JupyterLab, at the start-here notebook",
                         description="Any further option goes to JupyterLab, e.g. `course lab --port 8890`.")
    lab.set_defaults(func=cmd_lab)
    c = sub.add_parser("check", help="run exercise notebooks and report each exercise")
    c.add_argument("notebooks", nargs="+")
    c.add_argument("--timeout", type=int, default=120, help="seconds a cell may run (default 120)")
    c.set_defaults(func=cmd_check)
    r = sub.add_parser("reset", help="restore a chapter's exercise notebook, backing up your copy first")
    r.add_argument("chapter", help="a chapter number or name, e.g. 01 or 01-sync-vs-async")
    r.set_defaults(func=cmd_reset)
    d = sub.add_parser("doctor", help="what this machine has for the course, and how to fix what is missing")
    d.set_defaults(func=cmd_doctor)
    e = sub.add_parser("exercises", help="(maintainers) generate exercises/ from solutions/")
    e.add_argument("--check", action="store_true", help="only report exercises that are out of date")
    e.set_defaults(func=cmd_exercises)
    x = sub.add_parser("execute", help="(maintainers) re-run notebooks top to bottom, storing outputs")
    x.add_argument("notebooks", nargs="+")
    x.add_argument("--timeout", type=int, default=300)
    x.set_defaults(func=cmd_execute)
    g = sub.add_parser("grade", help="(teachers) grade every learner notebook in a folder into a table and a CSV")
    g.add_argument("folder", help="the class folder: notebooks, or one subfolder of notebooks per learner")
    g.add_argument("--timeout", type=int, default=120, help="seconds a cell may run (default 120)")
    g.add_argument("--total", type=float, default=None,
                   help="seconds one notebook may take in all (default 10 x --timeout, at least 60)")
    g.add_argument("--csv", default="grades.csv", help="where to write the grades (default ./grades.csv)")
    g.add_argument("--jobs", type=_jobs, default=classroom.default_jobs(),
                   help="notebooks graded at the same time (default: this machine's cores, "
                        f"{classroom.default_jobs()})")
    g.set_defaults(func=cmd_grade)
    pr = sub.add_parser("progress", help="which exercises of which chapters pass")
    pr.add_argument("folder", nargs="?", default=str(exercises.EXERCISES),
                    help="the folder of your exercise notebooks (default: the course's exercises/)")
    pr.add_argument("--timeout", type=int, default=120, help="seconds a cell may run (default 120)")
    pr.add_argument("--total", type=float, default=None,
                    help="seconds one notebook may take in all (default 10 x --timeout, at least 60)")
    pr.set_defaults(func=cmd_progress)
    w = sub.add_parser("site", help="build a static HTML copy of the course (lessons, exercises, solutions)")
    w.add_argument("--out", default="site", help="the folder to write (default ./site, git-ignored)")
    w.set_defaults(func=cmd_site)
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args, rest = p.parse_known_args(argv)
    if rest and args.command != "lab":
        p.error(f"unrecognized arguments: {' '.join(rest)}")
    args.jupyter_options = rest if args.command == "lab" else []
    try:
        return args.func(args)
    except NotebookError as exc:
        print(f"course {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
