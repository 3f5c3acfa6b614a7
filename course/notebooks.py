"""Running notebooks in a real kernel, as JupyterLab would: for `course execute`, `course check` and the tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from sandbox.lab.guards import env_var
from sandbox.paths import REPO


class NotebookError(Exception):
    """A file that is not a notebook we can run; the message says why, for a learner."""


def read(path: Path) -> nbformat.NotebookNode:
    """Read and validate a notebook, turning every way it can be broken into one clear message."""
    if not path.exists():
        raise NotebookError(f"{path}: no such file")
    if path.suffix != ".ipynb":
        raise NotebookError(f"{path}: not a notebook (expected a .ipynb file)")
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # nbformat raises JSON, validation and key errors alike
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NotebookError(f"{path}: not a readable notebook ({first}). Restore it with `course reset`.") from None
    return nb


def execute(nb: nbformat.NotebookNode, path: Path, *, allow_errors: bool, timeout: int = 180) -> str | None:
    """Execute `nb` in place in a fresh kernel; returns None, or why the run stopped early."""
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=allow_errors,
                            resources={"metadata": {"path": str(path.parent if path.parent.exists() else REPO)}})
    with env_var("JPY_SESSION_NAME", str(path)):  # kernels learn their notebook from it, as under JupyterLab
        try:
            client.execute(stderr=subprocess.DEVNULL)  # the kernel's TCP warning is noise here
        except CellTimeoutError:
            return f"a cell ran longer than {timeout} s (an await without a timeout, or an endless loop?)"
        except DeadKernelError:
            return "the kernel died (the code crashed or exited the process)"
    return None
