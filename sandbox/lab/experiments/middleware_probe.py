"""A probe for chapter 05: catch Django's "adapted" debug log while a middleware chain is built.

`adapted_log()` switches the `django.request` logger to DEBUG for the block and keeps what it logs. (The hop
counter the chapter also uses is the toolkit's `lab.count_hops()`.)
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from sandbox.lab.trace import capture_log


class _Lines(logging.Handler):
    """Keeps each message as it is logged, so that the block can read what came so far."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextlib.contextmanager
def adapted_log() -> Iterator[list[str]]:
    """Keep what the `django.request` logger says at DEBUG level while the block runs (a list of lines).

    Django logs "Synchronous handler adapted for ..." and "Asynchronous handler adapted for ..." when it
    builds the middleware chain (only with settings.DEBUG = True): build a fresh handler inside the block.
    The lines are kept, not printed (an error logged meanwhile lands in the list too).
    """
    kept = _Lines()
    with capture_log("django.request", kept):
        yield kept.lines
