"""Chapter 08's app: the views lose or keep updates as the lesson says, SQLite's limits show up as claimed, the
connection counts hold on a real PostgreSQL, the demo tests pass (and the pitfall fails), the production command
lines serve the sandbox, and the DATABASES check judges settings without PostgreSQL too."""

from __future__ import annotations

import asyncio
import importlib.util
import shlex

import httpx
import pytest

# --- shared state ------------------------------------------------------------------------------------------------

async def test_read_await_write_loses_updates_and_the_fixes_keep_them(lab):
    from sandbox.considerations import views
    from sandbox.considerations.models import PageCount

    views.VISITS.clear()
    views.VISITS_LOCK = asyncio.Lock()  # a lock serves one event loop; each test runs in a new one
    async with lab.client() as c:
        unsafe = await lab.fire(c, "/considerations/visit/unsafe/t1/", 20)
        sync = await lab.fire(c, "/considerations/visit/sync/t2/", 20)
        locked = await lab.fire(c, "/considerations/visit/locked/t3/", 20)
        db = await lab.fire(c, "/considerations/visit/db/t4/", 20)
    assert not any(r.errors for r in (unsafe, sync, locked, db))
    visits, in_db, sync_threads = dict(views.VISITS), (await PageCount.objects.aget(name="t4")).value, len(sync.threads)

    assert visits["t1"] < 20 and visits["t2"] < 20, visits
    assert sync_threads == 20, "under ASGI every sync request ran in a thread of its own"
    assert visits["t3"] == 20 and in_db == 20


# --- SQLite ---------------------------------------------------------------------------------------------------------

async def test_sqlite_serializes_writers_and_fails_them_without_a_timeout(lab):
    from sandbox.lab.experiments import sqlite_lab

    patient = sqlite_lab.database("wal", timeout=20)
    impatient = sqlite_lab.database("wal", timeout=0.01)
    waited = await sqlite_lab.writers(patient, 4, 5, hold=0.05)
    failed = await sqlite_lab.writers(impatient, 4, 5, hold=0.05)
    assert (waited.committed, waited.errors) == (20, [])
    assert waited.seconds >= 20 * 0.05 * 0.9, "one writer at a time: 20 transactions of 50 ms, one after another"
    assert failed.errors and set(failed.errors) == {"OperationalError: database is locked"}


async def test_wal_lets_a_writer_commit_while_a_reader_reads(lab):
    from sandbox.lab.experiments import sqlite_lab

    rollback_wait, rollback_error = await sqlite_lab.reader_and_writer(sqlite_lab.database("delete", timeout=20))
    wal_wait, wal_error = await sqlite_lab.reader_and_writer(sqlite_lab.database("wal", timeout=20))
    assert rollback_error is None and wal_error is None
    assert rollback_wait >= 0.25 > wal_wait


async def test_deferred_read_then_write_fails_at_once_and_immediate_waits(lab):
    from sandbox.lab.experiments import sqlite_lab

    deferred = await sqlite_lab.read_then_write(sqlite_lab.database("wal", timeout=20), 4)
    immediate = await sqlite_lab.read_then_write(sqlite_lab.database("wal", timeout=20, transaction_mode="IMMEDIATE"),
                                                 4)
    assert deferred.committed < 4 and "OperationalError: database is locked" in deferred.errors
    assert deferred.seconds < 5, "it did not wait for the 20 s timeout"
    assert (immediate.committed, immediate.errors) == (4, [])


# --- PostgreSQL connections -----------------------------------------------------------------------------------------

# Persistent connections and the pool, counted on a real PostgreSQL: notebooks/08-key-considerations.ipynb asserts
# them on every run, with the same measure.connections_under_load.


def test_the_connection_plot_gives_each_run_a_panel_and_names_the_limit_in_its_legend():
    from sandbox.lab.experiments.connections import ConnectionRun, plot

    runs = [ConnectionRun(label, 32, 0, peak, 0, None, samples=[(0.0, 0), (0.1, peak), (0.5, 0)])
            for label, peak in (("persistent", 16), ("pool of 4", 4), ("gunicorn", 4))]
    figure = plot(runs, limit=20)
    assert [ax.get_title(loc="left") for ax in figure.axes] == ["persistent", "pool of 4", "gunicorn"]
    assert not any(ax.texts for ax in figure.axes), "no label written on the plot, where a line could cross it"
    legend = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert "the role's limit (20)" in legend
    assert all(ax.get_ylim()[0] == 0 and ax.get_ylim()[1] > 20 for ax in figure.axes)


# --- the demo tests -------------------------------------------------------------------------------------------------

@pytest.mark.slow  # pytest in a child process
async def test_demo_tests_pass_and_the_pitfall_fails(lab):
    from sandbox.lab.experiments import testing

    demo = await testing.run_pytest("sandbox/considerations/test_async_demo.py")
    pitfall = await testing.run_pytest("sandbox/considerations/test_async_pitfall.py")
    assert demo.returncode == 0 and "5 passed" in demo.output, demo.output[-2000:]
    assert pitfall.returncode == 1 and "1 failed, 1 passed" in pitfall.output, pitfall.output[-2000:]
    assert "test_starts_from_an_empty_table FAILED" in pitfall.summary()


# --- production command lines ---------------------------------------------------------------------------------------

@pytest.mark.slow  # servers
@pytest.mark.parametrize("index", range(6))
async def test_production_command_line_serves_the_sandbox_with_two_workers(lab, index):
    import psutil

    from sandbox.considerations import deploy
    from sandbox.lab.servers import claim_port, http_probe, launch

    command = deploy.COMMANDS[index]
    assert not command.needs or importlib.util.find_spec(command.needs.replace("-", "_")), \
        f"{command.needs} is missing from the course's dependencies"
    port = claim_port(None)
    program, *args = shlex.split(deploy.for_sandbox(command, port, workers=2))

    server = await launch(command.server, [f"exe:{_binary(program)}", *args],
                          port=port, env=None, timeout=30, probe=http_probe)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            answers = [(await http.get("/whoami/")).status_code for _ in range(4)]
        processes = len(psutil.Process(server.pid).children(recursive=True)) + 1
    finally:
        server.stop()
    assert answers == [200] * 4
    expected = 1 if command.server == "daphne" else 3  # daphne has no workers; others: a manager and two workers
    assert processes >= expected, f"{command.server}: {processes} process(es)"


def _binary(program: str) -> str:
    import sys
    from pathlib import Path

    return str(Path(sys.executable).with_name(program))


# --- the DATABASES check without PostgreSQL -------------------------------------------------------------------------

@pytest.mark.parametrize(("extra", "verdict"), [
    ({"CONN_MAX_AGE": 0, "OPTIONS": {"pool": {"max_size": 4, "timeout": 10}}}, "at most 4"),
    ({"OPTIONS": {"pool": True}}, "wait up to 10 s"),
    ({"CONN_MAX_AGE": 60, "OPTIONS": {"pool": True}}, "Pooling doesn't support persistent connections"),
    ({"CONN_MAX_AGE": 60}, "no pool"),
    ({"OPTIONS": {"pool": {"max_size": 32}}}, "more than 4"),
])
def test_offline_verdict_uses_djangos_connection_handler(lab, extra, verdict):
    from sandbox.checks import key_considerations as check
    from sandbox.checks.common import ExerciseFailed

    database = {"ENGINE": "django.db.backends.postgresql", "NAME": "sandbox", "HOST": "127.0.0.1"} | extra
    try:
        said = check._offline_verdict("pooled-database", database)
    except ExerciseFailed as failed:
        said = failed.feedback
    assert verdict in said


def test_exercise_settings_take_the_database_from_the_environment():
    import json
    import subprocess
    import sys

    entry = {"ENGINE": "django.db.backends.postgresql", "NAME": "x", "CONN_MAX_AGE": 0, "OPTIONS": {"pool": True}}
    code = "from sandbox.considerations import settings_exercise as s; import json; print(json.dumps(s.DATABASES))"
    from sandbox.paths import REPO

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO,
                         env={"CONSIDERATIONS_DATABASE": json.dumps(entry), "PATH": ""}, check=True).stdout
    assert json.loads(out)["default"] == entry
