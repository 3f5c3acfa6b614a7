"""Counting database connections from outside: a server under concurrent load, PostgreSQL's own count sampled
while it runs, and what each request says about the connection it used.

`connections_under_load` starts a server with the given environment (`lab.postgres_env(...)` picks the database
settings), sends `rounds` batches of `concurrent` requests to a view that runs a query and then waits, samples
`pg_stat_activity` every `every` seconds meanwhile, and stops the server. Every request answers with PostgreSQL's
process id for its connection (`pg_backend_pid()`), so the number of distinct ids is the number of connections
that were opened.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from sandbox.lab.load import periodic
from sandbox.lab.postgres import pg_connections
from sandbox.lab.servers import Server, start_server

if TYPE_CHECKING:  # matplotlib loads when a figure is drawn, not with this module
    from matplotlib.figure import Figure


@dataclass
class ConnectionRun:
    """What one server did with its database connections under load."""

    label: str
    requests: int
    failed: int
    peak: int  # the most connections PostgreSQL counted at once
    after: int  # connections still open just after the last request
    after_gc: int | None  # ... and after the server ran Python's garbage collector (None: not asked)
    backends: set[int] = field(default_factory=set)  # PostgreSQL process ids seen: one per connection opened
    threads: set[str] = field(default_factory=set)  # server threads that ran the queries
    samples: list[tuple[float, int]] = field(default_factory=list)  # (seconds, connections)
    errors: list[str] = field(default_factory=list)  # distinct error lines from the server's log
    wall: float = 0.0

    def row(self) -> str:
        gc_part = "" if self.after_gc is None else f" {self.after_gc:>8}"
        return (f"{self.label:<26} {self.requests - self.failed:>3}/{self.requests:<3} {self.peak:>5} "
                f"{len(self.backends):>8} {self.after:>6}{gc_part} {self.wall:>6.2f} s")


HEADER = f"{'settings':<26} {'ok':>7} {'peak':>5} {'opened':>8} {'after':>6}"


def table(runs: list[ConnectionRun]) -> str:
    """One line per run: requests that succeeded, peak connections, connections opened, open after the load."""
    with_gc = any(r.after_gc is not None for r in runs)
    header = HEADER + (f" {'after gc':>8}" if with_gc else "") + f" {'time':>8}"
    return "\n".join([header, *(r.row() for r in runs)])


async def connections_under_load(pg: Server, label: str, *, env: dict[str, str], kind: str = "uvicorn",
                                 path: str = "/considerations/db/?s=0.2", concurrent: int = 16, rounds: int = 2,
                                 every: float = 0.02, collect: bool = False, threads: int = 4) -> ConnectionRun:
    """Serve the sandbox with `kind` and `env`, load `path` and count connections. See the module docstring."""
    server = await start_server(kind, env=env, threads=threads, quiet=True)
    samples: list[tuple[float, int]] = []
    t0 = time.perf_counter()

    async def take() -> None:
        samples.append((time.perf_counter() - t0, await pg_connections(pg)))

    bodies: list[dict[str, Any]] = []
    failed = 0
    after_gc: int | None = None  # counted only when `collect`
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    try:  # sampled while the block runs, the counts after the load included; no extra sample at its end
        async with (periodic(every, take, last=False), asyncio.timeout(120),
                    httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as http):
            for _ in range(rounds):
                answers = await asyncio.gather(*(http.get(path) for _ in range(concurrent)), return_exceptions=True)
                for answer in answers:
                    if isinstance(answer, httpx.Response) and answer.status_code == 200:
                        bodies.append(answer.json())
                    else:
                        failed += 1
            wall = time.perf_counter() - t0
            await asyncio.sleep(2 * every)
            after = await pg_connections(pg)
            if collect:
                await http.get("/considerations/gc/")
                await asyncio.sleep(2 * every)
                after_gc = await pg_connections(pg)
    finally:
        log = server.log_tail(2000)
        server.stop()
    errors = sorted({line.strip() for line in log.splitlines()
                     if line.startswith(("django.", "psycopg", "psycopg_pool"))})
    return ConnectionRun(label, rounds * concurrent, failed, max((n for _, n in samples), default=0), after, after_gc,
                         {b["backend_pid"] for b in bodies}, {b["db_thread"] for b in bodies}, samples, errors, wall)


def plot(runs: list[ConnectionRun], limit: int | None = None,
         title: str = "connections PostgreSQL counted") -> Figure:
    """Connections over time, one panel per run (lines that coincide would hide each other), on shared axes; the
    role's limit as a dashed line, named in the legend rather than written where a line could cross it."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(len(runs), 1, figsize=(9, 0.4 + 1.15 * len(runs)), sharex=True, sharey=True,
                             squeeze=False)
    top = max([n for run in runs for _, n in run.samples] + [limit or 0, 1])
    for i, (ax, run) in enumerate(zip(axes[:, 0], runs, strict=True)):
        colour = f"C{i % 10}"
        ax.plot([t for t, _ in run.samples], [n for _, n in run.samples], color=colour, drawstyle="steps-post",
                label="connections")
        if limit:
            ax.axhline(limit, color="grey", linestyle="--", linewidth=1, label=f"the role's limit ({limit})")
        ax.set_ylim(0, top * 1.15)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=3))
        ax.set_title(run.label, fontsize=9, loc="left", pad=2)
    axes[0, 0].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0, frameon=False)
    axes[-1, 0].set_xlim(left=0)
    axes[-1, 0].set_xlabel("seconds since the server started taking load")
    fig.supylabel("connections", fontsize=10)
    fig.suptitle(title, fontsize=10, x=0.01, ha="left")
    fig.tight_layout()
    plt.close(fig)
    return fig
