"""Run-All fidelity: queue every cell of a notebook at once, as JupyterLab's "Run All" does, and require a
reply for each one.

nbval sends one cell at a time, so it cannot see cells that a kernel drops when they arrive all together
(the nest_asyncio failure mode under ipykernel 7), nor a reply whose status is "error" without an error
message (a mistyped magic). Like JupyterLab, every cell is sent with stop_on_error, except cells tagged
`raises-exception`: so an error in an untagged cell shows up here as the cells after it being aborted.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import nbformat
from jupyter_client.manager import start_new_kernel

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted([*ROOT.glob("notebooks/*.ipynb"), *ROOT.glob("solutions/*.ipynb")])


def _queue_all(path: Path, deadline: float = 240) -> list[str]:
    """Send every code cell at once; return a description of each cell that did not reply as it should."""
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code"]
    env = {**os.environ, "JPY_SESSION_NAME": path.name}
    km, kc = start_new_kernel(kernel_name="python3", env=env, cwd=str(path.parent), stderr=subprocess.DEVNULL)
    problems = []
    try:
        ids = {}
        for index, cell in enumerate(cells):
            may_fail = "raises-exception" in cell.metadata.get("tags", [])
            ids[kc.execute(cell.source, stop_on_error=not may_fail)] = (index, may_fail)
        replies, end = {}, time.monotonic() + deadline
        while len(replies) < len(ids) and time.monotonic() < end:
            try:
                msg = kc.get_shell_msg(timeout=max(0.1, end - time.monotonic()))
            except Exception:  # queue.Empty: the deadline passed
                break
            parent = msg["parent_header"].get("msg_id")
            if parent in ids:
                replies[parent] = msg["content"]
        for msg_id, (index, may_fail) in ids.items():
            content = replies.get(msg_id)
            if content is None:
                problems.append(f"Cell {index}: no reply (dropped or still running after {deadline} s)")
            elif content["status"] == "aborted":
                problems.append(f"Cell {index}: aborted (an earlier cell failed)")
            elif content["status"] == "error" and not may_fail:
                problems.append(f"Cell {index}: {content.get('ename', '?')}: {content.get('evalue', '')}")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return problems


def _run_all_class(path: Path) -> type:
    """One class per notebook, so that pytest-xdist's loadscope spreads the notebooks over its workers."""

    def test_run_all_replies_to_every_cell(self):
        problems = _queue_all(path)
        assert not problems, f"{path.name} under Run All:\n" + "\n".join(problems)

    name = f"TestRunAll_{path.parent.name}_{path.stem.replace('-', '_')}"
    return type(name, (), {"test_run_all_replies_to_every_cell": test_run_all_replies_to_every_cell})


for _path in NOTEBOOKS:
    _cls = _run_all_class(_path)
    globals()[_cls.__name__] = _cls


def test_run_all_notices_a_failing_cell(tmp_path):
    """The fidelity check itself must fail on a broken notebook: an error, then a cell that gets aborted."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1/0"), nbformat.v4.new_code_cell("x = 1"),
                                         nbformat.v4.new_code_cell("%notamagic")])
    path = tmp_path / "broken.ipynb"
    nbformat.write(nb, path)
    problems = _queue_all(path, deadline=60)
    assert problems[0].startswith("Cell 0: ZeroDivisionError")
    assert "aborted" in problems[1] and "aborted" in problems[2]
