"""Chapter 05's givens: the audit service's two clients, for exercise 'fix-document-middleware'.

`book` records what the audits saw. The check starts a new book for each round (so an audit an earlier answer
left running counts in its own round) by setting this module's `book`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

from sandbox.lab.trace import where

AUDIT_SECONDS = 0.4
TOGETHER_DEADLINE = 3.0  # seconds an audit waits for the other audits of its round before it gives up


@dataclass
class AuditBook:
    """What the audit functions saw: one entry per call, and how many async audits were in flight at once."""

    entries: list[dict] = field(default_factory=list)
    expected: int = 0  # the audits of this round expected in flight together (0: do not wait)
    in_flight: int = 0
    max_in_flight: int = 0
    gave_up: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def enter(self, kind: str, request) -> dict:
        entry = {"kind": kind, "token": request.GET.get("r", "") if hasattr(request, "GET") else "",
                 "thread": threading.current_thread().name, "where": where(), "start": time.perf_counter(),
                 "end": None}
        with self.lock:
            self.entries.append(entry)
        return entry

    def of(self, token: str) -> list[dict]:
        return [e for e in self.entries if e["token"] == token]


book = AuditBook()


async def audit(request) -> None:
    """The async audit call (think: an HTTP call to an audit service): waits AUDIT_SECONDS without blocking."""
    mine = book  # the round this call belongs to: an audit an earlier answer left running counts in its own round
    entry = mine.enter("async", request)
    mine.in_flight += 1
    mine.max_in_flight = max(mine.max_in_flight, mine.in_flight)
    try:
        deadline = time.perf_counter() + TOGETHER_DEADLINE
        while mine.expected and not mine.gave_up and mine.in_flight < mine.expected:
            if time.perf_counter() > deadline:
                mine.gave_up = True
            await asyncio.sleep(0.01)
        await asyncio.sleep(AUDIT_SECONDS)
    finally:
        mine.in_flight -= 1
        entry["end"] = time.perf_counter()


def audit_sync(request) -> None:
    """The same call with a sync client: blocks its thread for AUDIT_SECONDS."""
    entry = book.enter("sync", request)
    try:
        time.sleep(AUDIT_SECONDS)
    finally:
        entry["end"] = time.perf_counter()
