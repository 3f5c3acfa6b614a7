"""Run the chapter's demo tests with pytest-django, in a child process with a configuration of its own.

The course's own pytest run switches pytest-django off (`-p no:django` in pyproject.toml), so the demo tests run
with their own ini file, written to the notebook's data directory and passed with `-c`: pyproject's options do
not apply, and `-p django` turns the plugin on.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from sandbox.lab.boot import data_dir
from sandbox.paths import REPO

INI = """\
[pytest]
DJANGO_SETTINGS_MODULE = sandbox.settings
asyncio_mode = strict
asyncio_default_fixture_loop_scope = function
"""


@dataclass
class TestRun:
    returncode: int
    output: str

    def summary(self) -> str:
        """The test lines, the assertion that failed and the final count, without pytest's header, the rest of
        the tracebacks, and timings."""
        keep = [line for line in self.output.splitlines()
                if re.search(r"(PASSED|FAILED|ERROR)( |$)|^(E  |FAILED )|\d+ (passed|failed)", line)]
        keep = [re.sub(r"\s+\[\s*\d+%\]$", "", line) for line in keep]
        # pytest fits a short-summary line's " - message" to the terminal's width, and prints it whole when CI is
        # set: the E lines above carry the message, so the summary line keeps only the test's name
        keep = [re.sub(r"^(FAILED \S+) - .*$", r"\1", line) for line in keep]
        return "\n".join(re.sub(r"^=+ (.*?) =+$", r"\1", line) for line in keep)  # rules as wide as the terminal


def ini_file() -> Path:
    path = data_dir() / "pytest-chapter08.ini"
    path.write_text(INI)
    return path


async def run_pytest(*paths: str, timeout: float = 120) -> TestRun:
    """`python -m pytest -c <ini> -p django -v <paths>` from the repository; returns its exit code and output."""
    command = [sys.executable, "-m", "pytest", "-c", str(ini_file()), "--rootdir", str(REPO), "-p", "django",
               "-p", "no:cacheprovider", "-p", "no:xdist", "-p", "no:nbval", "-v", "--no-header", "--color=no",
               *paths]
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_ALLOW_ASYNC_UNSAFE", "DJANGO_SETTINGS_MODULE"}}
    proc = await asyncio.create_subprocess_exec(*command, cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    try:
        output, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return TestRun(await proc.wait(), output.decode(errors="replace"))  # exited already: wait() gives its code
