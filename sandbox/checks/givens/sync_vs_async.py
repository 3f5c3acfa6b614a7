"""Chapter 01's given: a sync-only library call, for exercise 'offload-blocking'."""

from __future__ import annotations

import threading
import time

LEGACY_SECONDS = 0.5
legacy_threads: list[str] = []  # the thread of every call; the check clears it, then reads it


def legacy_report(n: int) -> str:
    """A sync-only library call: blocks its thread for 0.5 s (think: a SOAP client, a PDF renderer)."""
    legacy_threads.append(threading.current_thread().name)
    time.sleep(LEGACY_SECONDS)
    return f"report #{n}"
