"""The private PostgreSQL of chapter 08: a real server with the servers' lifecycle, connections counted by
PostgreSQL itself, and a lesson told what to install (or, in CI, stopped) when it is missing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sandbox.lab import postgres
from tests.lab.test_servers import _gone
from tests.lab.test_services import assert_gone_with_its_kernel
from tests.markers import needs_postgres

pytestmark = pytest.mark.slow  # a private PostgreSQL



async def _data_directory(pg) -> Path:
    import psycopg

    async with await psycopg.AsyncConnection.connect(postgres._admin_dsn(pg.port, postgres._password(pg))) as conn:
        return Path((await (await conn.execute("SHOW data_directory")).fetchone())[0])


@needs_postgres
async def test_postgres_runs_migrated_counts_the_apps_connections_and_stops_without_a_trace(lab):
    import psycopg

    pg = await lab.start_postgres(max_connections=5, quiet=True)
    try:
        cluster = await _data_directory(pg)
        assert pg.alive() and lab.available(pg) and cluster.exists()

        conns = [await psycopg.AsyncConnection.connect(pg.url) for _ in range(3)]
        (items,) = await (await conns[0].execute("SELECT count(*) FROM catalog_item")).fetchone()
        during = await lab.pg_connections(pg)
        for conn in conns:
            await conn.close()
        async with asyncio.timeout(10):  # a backend leaves pg_stat_activity a moment after its client closed
            while (after := await lab.pg_connections(pg)) > 0:
                await asyncio.sleep(0.05)
    finally:
        pg.stop()
    assert items == 0, "migrated (the table exists) and empty: boot seeds the notebook's SQLite, not PostgreSQL"
    assert (during, after) == (3, 0)
    assert not pg.alive() and _gone(pg.pid) and not cluster.exists()


@needs_postgres
async def test_postgres_answers_only_those_who_have_its_password_and_never_prints_it(lab, capsys, monkeypatch):
    """What another user of a shared machine meets on the port: every role, with no password or a wrong one, is
    refused (pg_hba says scram-sha-256, no trust line); the kernel's own URL and environment get in."""
    import psycopg

    for variable in ("PGPASSWORD", "PGPASSFILE", "PGSERVICE"):
        monkeypatch.delenv(variable, raising=False)  # nothing in this process's environment may supply one
    monkeypatch.setenv("PGPASSFILE", "/nonexistent")  # nor ~/.pgpass
    pg = await lab.start_postgres(quiet=False)
    try:
        printed = capsys.readouterr().out
        password = postgres._password(pg)
        port = pg.port
        refused = []
        for url in (f"postgresql://sandbox@127.0.0.1:{port}/sandbox", f"postgresql://postgres@127.0.0.1:{port}/postgres",
                    f"postgresql://sandbox:wrong-{password}@127.0.0.1:{port}/sandbox",
                    f"postgresql://postgres:wrong@127.0.0.1:{port}/sandbox"):
            with pytest.raises(psycopg.OperationalError) as failed:
                await psycopg.AsyncConnection.connect(url, connect_timeout=5)
            refused.append(str(failed.value))
        async with await psycopg.AsyncConnection.connect(postgres._admin_dsn(port, password)) as conn:
            methods = {row[0] for row in await (await conn.execute("SELECT auth_method FROM pg_hba_file_rules"))
                       .fetchall()}
        async with await psycopg.AsyncConnection.connect(pg.url):
            pass  # the kernel's own URL
        monkeypatch.setenv("PGPASSWORD", postgres.password_env(pg)["PGPASSWORD"])
        async with await psycopg.AsyncConnection.connect(f"postgresql://sandbox@127.0.0.1:{port}/sandbox"):
            pass  # a process handed password_env, with settings that name no password (chapter 08's exercise)
    finally:
        pg.stop()
    assert len(password) >= 24 and password in pg.url
    assert all("password" in reason for reason in refused), refused
    assert methods == {"scram-sha-256"}, f"pg_hba.conf allows {methods}: every connection must give the password"
    assert password not in printed and "password-protected" in printed
    assert password not in repr(pg) and "sandbox@127.0.0.1" in repr(pg)


@needs_postgres
async def test_the_apps_limit_is_postgresqls_and_the_counter_still_gets_in(lab):
    import psycopg

    pg = await lab.start_postgres(max_connections=2, quiet=True)
    try:
        conns = [await psycopg.AsyncConnection.connect(pg.url) for _ in range(2)]
        try:
            with pytest.raises(psycopg.OperationalError, match="remaining connection slots are reserved"):
                await psycopg.AsyncConnection.connect(pg.url)
            assert await lab.pg_connections(pg) == 2
        finally:
            for conn in conns:
                await conn.close()
    finally:
        pg.stop()


@needs_postgres
async def test_a_server_started_with_postgres_env_uses_postgresql_and_its_pool(lab):
    pg = await lab.start_postgres(quiet=True)
    try:
        server = await lab.start_server("uvicorn", env=lab.postgres_env(pg, pool={"min_size": 2, "max_size": 2}),
                                        quiet=True)
        try:
            result = await lab.fire(server, "/catalog/items/", 8)
            connections = await lab.pg_connections(pg)
        finally:
            server.stop()
    finally:
        pg.stop()
    assert not result.errors, result.summary()
    assert connections == 2, "the pool's two connections, opened by the server, are PostgreSQL's to count"


async def test_without_postgresql_a_lesson_is_told_what_to_install_and_cells_say_skipped(lab, monkeypatch, capsys):
    monkeypatch.setattr(postgres, "find_postgres_bin", lambda name="initdb": None)
    monkeypatch.setenv("COURSE_REQUIRE_REAL_SERVICES", "1")
    with pytest.raises(lab.ServiceMissing, match="PostgreSQL is not installed. Install it: "):
        await lab.start_postgres()
    monkeypatch.delenv("COURSE_REQUIRE_REAL_SERVICES")
    pg = await lab.start_postgres()
    assert not pg and "install" in repr(pg)
    assert capsys.readouterr().out.startswith("NO POSTGRESQL: the cells that need it will say SKIPPED.")
    assert lab.available(pg) is False
    assert capsys.readouterr().out.startswith("SKIPPED: this cell needs PostgreSQL, which is not installed.")


@needs_postgres
def test_postgres_goes_when_only_the_kernel_process_is_killed():
    assert_gone_with_its_kernel("service = await lab.start_postgres(quiet=True)", "postgres")
