"""Runs a server or worker module inside a process that is tied to the kernel that started it.

Started as `python -m sandbox.lab.child <kernel pid> <tie> <module> [args...]`, or with `exe:<path>` in place of
the module for a program that is not Python (redis-server, postgres), which then runs as this process's child
with the same ties. The process lives in its own
session, so interrupting a cell (SIGINT to the kernel's process group) leaves it running; but it must never
outlive the kernel. Two ties make sure of that: Linux's parent-death signal, and a watchdog thread that
notices when the parent is gone (a SIGKILLed kernel, nbval's teardown, or a platform without prctl).
"""

from __future__ import annotations

import ctypes
import os
import runpy
import signal
import subprocess
import sys
import threading
import time

PR_SET_PDEATHSIG = 1


def _set_parent_death_signal() -> None:
    """Ask Linux to send SIGTERM when the parent thread dies (only valid if the kernel's main thread forked us)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _watch_parent(parent: int, grace: float = 10.0) -> None:
    """When the parent is gone we are re-parented: stop gracefully, then for sure."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(grace)
    os._exit(1)


def _supervise(program: list[str]) -> int:
    """Run a non-Python program as our child: it dies with us (its own parent-death signal), and our SIGTERM
    is passed on to it."""
    child = subprocess.Popen(program, preexec_fn=_set_parent_death_signal)  # noqa: PLW1509 - main thread only
    signal.signal(signal.SIGTERM, lambda *_: child.terminate())
    return child.wait()


def main(argv: list[str]) -> None:
    parent, tie, module, *args = argv
    if tie == "pdeathsig":
        _set_parent_death_signal()
    if os.getppid() != int(parent):  # the kernel died before we got here
        sys.exit(0)
    threading.Thread(target=_watch_parent, args=(int(parent),), daemon=True, name="parent-watchdog").start()
    if module.startswith("exe:"):
        sys.exit(_supervise([module[4:], *args]))
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
