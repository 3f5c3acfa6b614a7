"""SQLite under concurrency: several threads write one SQLite file at once, each with its own connection.

Each experiment gets a fresh database file in the notebook's data directory and its own Django database alias
(the options under test: `timeout`, journal mode, `transaction_mode`), and runs its threads in a worker thread
of its own, so a cell awaits it without blocking the event loop. Errors are collected, not raised: the point
is to count them.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import connections, transaction
from django.db.utils import ConnectionHandler

from sandbox.lab.boot import data_dir

_aliases = itertools.count(1)


@dataclass
class Outcome:
    """What a run of writers did: how long it took, how many transactions committed, and the errors."""

    label: str
    seconds: float
    committed: int
    errors: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        kinds = sorted(set(self.errors))
        return (f"{self.label}: {self.committed} committed, {len(self.errors)} failed in {self.seconds:.2f} s"
                + (f"  {kinds}" if kinds else ""))


def database(journal_mode: str = "wal", **options: Any) -> str:
    """A fresh SQLite file with one table, reachable as a new database alias; returns the alias.

    options: the database's OPTIONS, as in settings.DATABASES (timeout, transaction_mode, ...).
    """
    alias = f"sqlite_lab_{next(_aliases)}"
    path = data_dir() / f"{alias}.sqlite3"
    settings = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(path), "OPTIONS": options}
    connections.settings[alias] = ConnectionHandler({"default": settings}).settings["default"]

    def create() -> None:
        with connections[alias].cursor() as cursor:
            cursor.execute(f"PRAGMA journal_mode={journal_mode}")  # stored in the file: every connection uses it
            cursor.execute("CREATE TABLE tick (id INTEGER PRIMARY KEY, writer INTEGER, n INTEGER)")
            cursor.execute("CREATE TABLE counter (id INTEGER PRIMARY KEY, value INTEGER)")
            cursor.execute("INSERT INTO counter VALUES (1, 0)")
        connections[alias].close()

    thread = threading.Thread(target=create)
    thread.start()
    thread.join()
    return alias


def _in_threads(label: str, threads: int, work: Callable[[int, list[str]], int]) -> Outcome:
    """Run `work(alias_index, errors)` in `threads` threads at once; each returns how many it committed."""
    errors: list[str] = []
    committed = [0] * threads

    def run(i: int) -> None:
        committed[i] = work(i, errors)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return Outcome(label, time.perf_counter() - start, sum(committed), errors)


def _error(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


async def writers(alias: str, threads: int, each: int, *, hold: float = 0.0, label: str | None = None) -> Outcome:
    """`threads` threads each commit `each` one-row transactions; a transaction stays open `hold` seconds
    (the work a real transaction does between its write and its commit)."""

    def work(i: int, errors: list[str]) -> int:
        done = 0
        try:
            for n in range(each):
                try:
                    with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
                        cursor.execute("INSERT INTO tick (writer, n) VALUES (%s, %s)", [i, n])
                        time.sleep(hold)
                    done += 1
                except Exception as exc:  # count it, keep going: a real server would answer 500 and go on
                    errors.append(_error(exc))
        finally:
            connections[alias].close()
        return done

    async with asyncio.timeout(120):
        return await asyncio.to_thread(_in_threads, label or f"{threads} x {each}", threads, work)


async def read_then_write(alias: str, threads: int, *, label: str | None = None) -> Outcome:
    """`threads` transactions at once, each reads the counter, then writes it back plus one."""
    start = threading.Barrier(threads)

    def work(i: int, errors: list[str]) -> int:
        try:
            with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
                cursor.execute("SELECT value FROM counter WHERE id = 1")
                value = cursor.fetchone()[0]
                try:
                    start.wait(0.2)  # all have read before any writes (or the others are already waiting)
                except threading.BrokenBarrierError:
                    pass
                cursor.execute("UPDATE counter SET value = %s WHERE id = 1", [value + 1])
            return 1
        except Exception as exc:
            errors.append(_error(exc))
            return 0
        finally:
            connections[alias].close()

    async with asyncio.timeout(60):
        return await asyncio.to_thread(_in_threads, label or f"{threads} read-then-write", threads, work)


async def reader_and_writer(alias: str, read_for: float = 0.3) -> tuple[float, str | None]:
    """A report reads inside a transaction for `read_for` seconds; meanwhile one row is written.

    Returns how long the write waited, and its error if it failed.
    """
    reading = threading.Event()
    result: dict[str, Any] = {}

    def report() -> None:
        try:
            with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
                cursor.execute("SELECT count(*) FROM tick")
                cursor.fetchone()
                reading.set()
                time.sleep(read_for)
        finally:
            connections[alias].close()

    def write() -> None:
        reading.wait(5)
        start = time.perf_counter()
        try:
            with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
                cursor.execute("INSERT INTO tick (writer, n) VALUES (-1, -1)")
            result["error"] = None
        except Exception as exc:
            result["error"] = _error(exc)
        finally:
            result["waited"] = time.perf_counter() - start
            connections[alias].close()

    def both() -> None:
        threads = [threading.Thread(target=report), threading.Thread(target=write)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    async with asyncio.timeout(60):
        await asyncio.to_thread(both)
    return result["waited"], result["error"]
