"""A probe for chapter 05: catch Django's "adapted" debug log while a middleware chain is built.

`adapted_log()` switches the `django.request` logger to DEBUG for the block and keeps what it logs. (The hop
counter the chapter also uses is the toolkit's `lab.count_hops()`.)
"""

from __future__ import annotations

import contextlib
import logging


class _Keep(logging.Handler):
    def __init__(self, lines: list[str]):
        super().__init__(logging.DEBUG)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextlib.contextmanager
def adapted_log():
    """Keep what the `django.request` logger says at DEBUG level while the block runs (a list of lines).

    Django logs "Synchronous handler adapted for ..." and "Asynchronous handler adapted for ..." when it
    builds the middleware chain (only with settings.DEBUG = True): build a fresh handler inside the block.
    The lines are kept, not printed (an error logged meanwhile lands in the list too).
    """
    logger, lines = logging.getLogger("django.request"), []
    handler, level, propagate = _Keep(lines), logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
