"""The notebook runner itself (tests/notebook_run.py): one execution per notebook, judged by nbval and by Run
All's rules, must fail a broken notebook the way JupyterLab's Run All would show it broken.

One pytest run in a child process executes a few small notebooks written here, each for one way to break.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import nbformat
import pytest

from conftest import leftover_processes

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # kernels


def _notebook(path: Path, *cells) -> None:
    nb = nbformat.v4.new_notebook()
    for cell in cells:
        source, tags, outputs = (cell, [], []) if isinstance(cell, str) else cell
        code = nbformat.v4.new_code_cell(source, metadata={"tags": tags})
        code.outputs, code.execution_count = outputs, 1 if outputs else None
        nb.cells.append(code)
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict[str, str]:
    """{node id's cell part: the verdict line} for every cell of the notebooks below, run by one child pytest."""
    folder = tmp_path_factory.mktemp("notebooks")
    counter = folder / "executions.txt"
    stored_error = nbformat.v4.new_output("error", ename="ZeroDivisionError", evalue="division by zero", traceback=[])
    _notebook(folder / "broken.ipynb", "1/0", "x = 1", "%notamagic")
    _notebook(folder / "dies.ipynb", "import os\nos._exit(1)", "x = 1")
    # cells that each fail (or pass) on their own without stopping the run; the first counts its executions
    _notebook(folder / "three.ipynb", f"with open({str(counter)!r}, 'a') as f:\n    f.write('ran\\n')",
              ("1 + 1", ["raises-exception", "nbval-check-output"], [stored_error]),
              "import asyncio\nasyncio.sleep(0)\npass", ("asyncio.sleep(0)\npass", ["never-awaited"], []), "%notamagic")
    _notebook(folder / "leaves-a-server.ipynb", "from sandbox import lab\nawait lab.boot()",
              "server = await lab.start_upstream()",  # and never stops it: the kernel's end must take it along
              "import httpx\nasync with httpx.AsyncClient(timeout=10) as http:\n"
              "    assert (await http.get(server.url + '/stats')).status_code == 200")
    marker = uuid.uuid4().hex
    env = {**os.environ, "COURSE_TEST_RUN": marker, "COLUMNS": "200"}
    env.pop("PYTEST_XDIST_WORKER", None)
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "conftest", "-n0",
                             "-rA", "--color=no", *sorted(str(p) for p in folder.glob("*.ipynb"))],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    verdicts = {}
    for line in result.stdout.splitlines():  # -rA's summary: "PASSED path::Cell n" or "FAILED path::Cell n - ..."
        if line.startswith(("PASSED ", "FAILED ")):
            verdicts[line.split(" ", 1)[1].split(" - ")[0].split("/")[-1]] = line.split(" ")[0]
    sections = re.split(r"\n_{3,} (\S+::Cell \d+) _{3,}\n", result.stdout)  # the failures, each with its message
    for node, text in zip(sections[1::2], sections[2::2], strict=True):
        verdicts[node.split("/")[-1]] += "\n" + text
    verdicts["executions"] = counter.read_text() if counter.exists() else ""
    verdicts["left running"] = leftover_processes(marker)
    return verdicts


def test_an_error_stops_the_run_and_every_later_cell_fails_as_aborted(report):
    assert report["broken.ipynb::Cell 0"].startswith("FAILED")
    assert "Aborted: an earlier cell failed" in report["broken.ipynb::Cell 1"]
    assert "Aborted: an earlier cell failed" in report["broken.ipynb::Cell 2"]


def test_a_kernel_that_dies_fails_its_cell_at_once_and_every_later_one(report):
    assert "the kernel died" in report["dies.ipynb::Cell 0"]  # not "Timeout of 180 seconds exceeded"
    assert "Kernel dead on test start" in report["dies.ipynb::Cell 1"]


def test_a_cell_that_must_fail_fails_when_nothing_is_raised(report):
    assert "Cell outputs differ" in report["three.ipynb::Cell 1"]


def test_a_mistyped_magic_fails_although_it_prints_no_error(report):
    assert "mistyped magic" in report["three.ipynb::Cell 4"]


def test_a_coroutine_never_awaited_fails_its_cell_unless_tagged(report):
    assert "coroutine 'sleep' was never awaited" in report["three.ipynb::Cell 2"]
    assert report["three.ipynb::Cell 3"].startswith("PASSED"), report["three.ipynb::Cell 3"]


def test_every_cell_runs_exactly_once(report):
    assert report["three.ipynb::Cell 0"].startswith("PASSED")
    assert report["executions"] == "ran\n"


def test_a_notebook_that_starts_a_server_leaves_nothing_behind(report):
    assert all(report[f"leaves-a-server.ipynb::Cell {i}"].startswith("PASSED") for i in range(3))
    assert report["left running"] == []
