"""The private PostgreSQL of chapter 08: a real server with the servers' lifecycle, connections counted by
PostgreSQL itself, and a lesson told what to install (or, in CI, stopped) when it is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.lab import postgres
from tests.test_servers import _gone
from tests.test_services import assert_gone_with_its_kernel

pytestmark = pytest.mark.slow  # a private PostgreSQL

needs_postgres = pytest.mark.skipif(not postgres.find_postgres_bin("initdb") and not postgres.require_real(),
                                    reason="needs PostgreSQL (CI installs it and never skips this)")


def _data_directory(run, pg) -> Path:
    import psycopg

    async def ask():
        async with await psycopg.AsyncConnection.connect(postgres._admin_dsn(pg.port)) as conn:
            return (await (await conn.execute("SHOW data_directory")).fetchone())[0]

    return Path(run(ask()))


@needs_postgres
def test_postgres_runs_migrated_counts_the_apps_connections_and_stops_without_a_trace(lab, run):
    import psycopg

    pg = run(lab.start_postgres(max_connections=5, quiet=True))
    try:
        cluster = _data_directory(run, pg)
        assert pg.alive() and lab.available(pg) and cluster.exists()

        async def hold(n):
            conns = [await psycopg.AsyncConnection.connect(pg.url) for _ in range(n)]
            tables = await (await conns[0].execute("SELECT count(*) FROM catalog_item")).fetchone()
            counted = await lab.pg_connections(pg)
            for conn in conns:
                await conn.close()
            return tables[0], counted, await lab.pg_connections(pg)

        items, during, after = run(hold(3))
    finally:
        pg.stop()
    assert items == 0, "migrated (the table exists) and empty: boot seeds the notebook's SQLite, not PostgreSQL"
    assert (during, after) == (3, 0)
    assert not pg.alive() and _gone(pg.pid) and not cluster.exists()


@needs_postgres
def test_the_apps_limit_is_postgresqls_and_the_counter_still_gets_in(lab, run):
    import psycopg

    pg = run(lab.start_postgres(max_connections=2, quiet=True))

    async def exhaust():
        conns = [await psycopg.AsyncConnection.connect(pg.url) for _ in range(2)]
        try:
            with pytest.raises(psycopg.OperationalError, match="remaining connection slots are reserved"):
                await psycopg.AsyncConnection.connect(pg.url)
            return await lab.pg_connections(pg)
        finally:
            for conn in conns:
                await conn.close()

    try:
        assert run(exhaust()) == 2
    finally:
        pg.stop()


@needs_postgres
def test_a_server_started_with_postgres_env_uses_postgresql_and_its_pool(lab, run):
    pg = run(lab.start_postgres(quiet=True))

    async def scenario():
        server = await lab.start_server("uvicorn", env=lab.postgres_env(pg, pool={"min_size": 2, "max_size": 2}),
                                        quiet=True)
        try:
            result = await lab.fire(server, "/catalog/items/", 8)
            return result, await lab.pg_connections(pg)
        finally:
            server.stop()

    try:
        result, connections = run(scenario())
    finally:
        pg.stop()
    assert not result.errors, result.summary()
    assert connections == 2, "the pool's two connections, opened by the server, are PostgreSQL's to count"


def test_without_postgresql_a_lesson_is_told_what_to_install_and_cells_say_skipped(lab, run, monkeypatch, capsys):
    monkeypatch.setattr(postgres, "find_postgres_bin", lambda name="initdb": None)
    monkeypatch.setenv("COURSE_REQUIRE_REAL_SERVICES", "1")
    with pytest.raises(lab.ServiceMissing, match="PostgreSQL is not installed. Install it: "):
        run(lab.start_postgres())
    monkeypatch.delenv("COURSE_REQUIRE_REAL_SERVICES")
    pg = run(lab.start_postgres())
    assert not pg and "install" in repr(pg)
    assert capsys.readouterr().out.startswith("NO POSTGRESQL: the cells that need it will say SKIPPED.")
    assert lab.available(pg) is False
    assert capsys.readouterr().out.startswith("SKIPPED: this cell needs PostgreSQL, which is not installed.")


@needs_postgres
def test_postgres_goes_when_only_the_kernel_process_is_killed():
    assert_gone_with_its_kernel("service = await lab.start_postgres(quiet=True)", "postgres")
