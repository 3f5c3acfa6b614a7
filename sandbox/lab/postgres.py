"""A private PostgreSQL started from a notebook, for the lessons on database connections (chapter 08).

The same lifecycle as the other servers (see `sandbox.lab.servers`): a fresh cluster (initdb) of its own, a free
loopback port and no Unix socket, the log's tail on failure, gone with the kernel. Like the private Redis, it has a
random password of its own (scram-sha-256 for every connection): on a machine shared by several learners, another
user who finds the port is refused. The password travels only in what the kernel hands its own processes
(`server.url`, `postgres_env`, `password_env`), never in a printed line. PostgreSQL refuses to run as
root, so under root (CI, containers) the cluster lives in a temporary directory owned by the `postgres` user and
the programs run as that user. There is no emulation: without PostgreSQL the lesson skips the cells that need it,
visibly (`available`), except in CI, where COURSE_REQUIRE_REAL_SERVICES=1 makes it an error.
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from sandbox.lab.boot import _pid_alive, data_dir
from sandbox.lab.programs import find_postgres_bin, install_hint
from sandbox.lab.servers import HOST, Server, ServerError, child_env, claim_port, launch
from sandbox.lab.services import ServiceMissing, require_real
from sandbox.paths import REPO

DATABASE = ROLE = "sandbox"
RESERVED = 3  # slots only the superuser may take: the counting connection always gets in
HINT = install_hint("postgresql", "postgresql@16", "postgresql")


class NoPostgres:
    """What `start_postgres` returns on a machine without PostgreSQL: falsy, and it says what to install."""

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"<PostgreSQL not installed: install it with {HINT}>"


def available(pg: Server | NoPostgres) -> bool:
    """Guard for a cell that needs PostgreSQL: `if lab.available(pg):`. Says SKIPPED when it is missing."""
    if isinstance(pg, Server) and pg.alive():
        return True
    reason = "is not installed" if not pg else "has stopped"
    print(f"SKIPPED: this cell needs PostgreSQL, which {reason}. Install it ({HINT}), then run the notebook again.")
    return False


def _as_postgres_user() -> list[str]:
    """Root may not run PostgreSQL: drop to the `postgres` account Debian's package creates."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise ServiceMissing("PostgreSQL refuses to run as root and there is no `postgres` user to run it as. "
                             "Run the course as an ordinary user.") from None
    return [shutil.which("setpriv") or "/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]


def _cluster_dir() -> Path:
    """A fresh folder in the notebook's data directory; under root one in the temporary directory, owned by the
    `postgres` user (who may not be able to reach the data directory)."""
    if os.geteuid() != 0:
        return Path(tempfile.mkdtemp(prefix="postgres-", dir=data_dir()))
    _prune_clusters()
    folder = Path(tempfile.mkdtemp(prefix=f"course-postgres-{os.getpid()}-"))
    shutil.chown(folder, "postgres", "postgres")
    return folder


def _prune_clusters() -> None:
    """Remove the clusters of kernels that are gone (a SIGKILLed kernel cannot clean up after itself)."""
    for folder in Path(tempfile.gettempdir()).glob("course-postgres-*-*"):
        pid = folder.name.split("-")[2]
        if pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _initdb(initdb: str, cluster: Path, password: str) -> None:
    """A cluster whose superuser has `password` and whose every connection must give one (scram-sha-256): initdb
    reads it from a file that only the server's user may read, removed once the cluster exists."""
    pwfile = cluster / "pwfile"
    pwfile.touch(mode=0o600)
    pwfile.write_text(password + "\n")
    if os.geteuid() == 0:
        shutil.chown(pwfile, "postgres", "postgres")
    try:
        done = subprocess.run([*_as_postgres_user(), initdb, "-D", str(cluster / "data"), "-A", "scram-sha-256",
                               f"--pwfile={pwfile}", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C"],
                              capture_output=True, text=True, timeout=120)
    finally:
        pwfile.unlink(missing_ok=True)
    if done.returncode:
        raise ServerError(f"initdb failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


async def _probe(server: Server, password: str) -> bool:
    import psycopg

    try:
        conn = await psycopg.AsyncConnection.connect(_admin_dsn(_port(server), password), connect_timeout=1)
    except psycopg.Error:
        return False
    await conn.close()
    return True


def _port(server: Server) -> int:
    """A PostgreSQL server's port (a `Server` without one is a worker, never a database)."""
    if server.port is None:
        raise ServerError(f"{server!r} has no port: it is not a database server")
    return server.port


def _dsn(port: int, password: str | None = None) -> str:
    """The app's connection: role `sandbox`, database `sandbox` (without the password: the form that is printed)."""
    secret = f":{password}" if password else ""
    return f"postgresql://{ROLE}{secret}@{HOST}:{port}/{DATABASE}"


def _admin_dsn(port: int, password: str | None) -> str:
    """The superuser's, to the maintenance database: it may use the reserved slots when the app has used all."""
    return f"postgresql://postgres:{password}@{HOST}:{port}/postgres"


def _password(pg: Server) -> str | None:
    """The server's password, from the address `start_postgres` gave it (both roles share it)."""
    return urlsplit(pg.address or "").password


async def _create_and_migrate(server: Server) -> None:
    """An empty database `sandbox` with the sandbox's tables, migrated by a child process (as a server would)."""
    import psycopg
    from psycopg import sql

    async with await psycopg.AsyncConnection.connect(_admin_dsn(_port(server), _password(server)),
                                                     autocommit=True) as conn:
        # the app's role (the superuser keeps the reserved slots), with the server's password, stored as a hash
        await conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(ROLE),
                                                                             sql.Literal(_password(server))))
        await conn.execute(f"CREATE DATABASE {DATABASE} OWNER {ROLE}")
    env = child_env(postgres_env(server))
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "django", "migrate", "--no-input", "-v", "0",
                                                env=env, cwd=REPO, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    try:
        output, _ = await asyncio.wait_for(proc.communicate(), 120)
    finally:
        if proc.returncode is None:  # timed out or cancelled: no migrate left behind
            proc.kill()
            await proc.wait()
    if proc.returncode:
        raise ServerError(f"migrating the PostgreSQL database failed:\n{output.decode()[-3000:]}")


async def start_postgres(*, max_connections: int = 20, timeout: float = 30.0,
                         quiet: bool = False) -> Server | NoPostgres:
    """A private PostgreSQL on a free loopback port with a migrated database `sandbox` and a password of its own.

    The password is in `server.url` (`postgresql://sandbox:<password>@127.0.0.1:<port>/sandbox`), in
    `postgres_env` and in `password_env`, which the kernel hands to the processes it starts; the printed line leaves
    it out.

    max_connections: how many connections the app's role may open (PostgreSQL keeps a few more for its
    superuser), small so that a lesson can reach the limit.
    Without PostgreSQL: prints what to install and returns a falsy `NoPostgres` (cells guard with `available`);
    under COURSE_REQUIRE_REAL_SERVICES=1 raises `ServiceMissing` instead.
    """
    initdb, postgres = find_postgres_bin("initdb"), find_postgres_bin("postgres")
    if not (initdb and postgres):
        if require_real():
            raise ServiceMissing(f"PostgreSQL is not installed. Install it: {HINT}")
        print(f"NO POSTGRESQL: the cells that need it will say SKIPPED. To run them, install it: {HINT}")
        return NoPostgres()
    cluster = _cluster_dir()
    password = secrets.token_urlsafe(24)  # letters, digits, - and _: safe in a URL as it is
    await asyncio.to_thread(_initdb, initdb, cluster, password)
    port = claim_port(None)
    settings = {"listen_addresses": HOST, "unix_socket_directories": "", "max_connections": max_connections + RESERVED,
                "superuser_reserved_connections": RESERVED, "fsync": "off", "synchronous_commit": "off",
                "full_page_writes": "off"}
    program = [*_as_postgres_user(), postgres, "-D", str(cluster / "data"), "-p", str(port),
               *[arg for name, value in settings.items() for arg in ("-c", f"{name}={value}")]]
    command = [f"exe:{program[0]}", *program[1:]]
    try:
        server = await launch("postgresql", command, port=port, env=None, timeout=timeout,
                              probe=lambda s: _probe(s, password), scheme="postgresql")
    except BaseException:
        shutil.rmtree(cluster, ignore_errors=True)
        raise
    server.cleanup.append(lambda: shutil.rmtree(cluster, ignore_errors=True))
    server.address = _dsn(port, password)
    try:
        await _create_and_migrate(server)
    except BaseException:
        server.stop()
        raise
    if not quiet:
        print(f"PostgreSQL ready on {_dsn(port)} (pid {server.pid}, max_connections={max_connections}, "
              f"password-protected) after {server.ready_after:.2f} s")
    return server


def postgres_env(pg: Server, *, conn_max_age: int | None = 0, pool: bool | dict = False) -> dict[str, str]:
    """Environment for `start_server(..., env=...)`: the server's default database becomes `pg`, with Django's
    CONN_MAX_AGE (None = forever) and OPTIONS["pool"] (True, or psycopg_pool.ConnectionPool arguments)."""
    return {"SANDBOX_DATABASE_URL": _dsn(_port(pg), _password(pg)), "SANDBOX_CONN_MAX_AGE": json.dumps(conn_max_age),
            "SANDBOX_DB_POOL": json.dumps(pool)}


def password_env(pg: Server) -> dict[str, str]:
    """Environment for a process whose own settings name `pg` without its password (a learner's DATABASES entry
    built from the printed URL): libpq, under psycopg and so under Django, reads PGPASSWORD when a connection
    gives none."""
    return {"PGPASSWORD": _password(pg) or ""}


async def pg_connections(pg: Server, database: str = DATABASE) -> int:
    """The app's connections to `database` right now, as PostgreSQL counts them (pg_stat_activity)."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(_admin_dsn(_port(pg), _password(pg)), autocommit=True) as conn:
        cursor = await conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                                    "AND usename = %s AND backend_type = 'client backend'", [database, ROLE])
        row = await cursor.fetchone()  # count(*) always answers one row
        return row[0] if row else 0
