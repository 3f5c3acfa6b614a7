"""The notebooks' toolkit. A notebook's setup cell is `from sandbox import lab` then `await lab.boot()`.

Modules by role: boot (setup), clients (in-process HTTP), servers (real servers from a cell), services (a private
Redis, task-queue workers), postgres (a private PostgreSQL), programs (finding Redis and PostgreSQL), load
(concurrent requests and connections, resource sampling), loadgen (locust, and servers compared under it), plots
(timelines, comparisons), trace (which thread ran what; hop and query counts), guards (expect_raises, the scoped
escape hatch, show_source), overlay (a chapter's settings over the kernel's), live (`serve`: a view or middleware
from a cell, in process), learn (`reveal` a prediction, the closing `quiz`); the package `experiments` holds the
chapters' own runners and measurements, imported by name. `sized` is the test run's one switch for heavy
measurements. Importing changes nothing.

The exercise checks (`sandbox.checks`) and the course's tools (`course`) build on this package; it imports neither.
"""

from sandbox.lab.boot import boot, data_dir, sized
from sandbox.lab.clients import client
from sandbox.lab.guards import UNSAFE_allow_sync_orm_in_event_loop, expect_raises, show_source
from sandbox.lab.learn import quiz, reveal
from sandbox.lab.live import serve
from sandbox.lab.load import fire, hold_websockets, sample
from sandbox.lab.loadgen import LoadResult, compare_servers, compare_table, locust
from sandbox.lab.overlay import apply_chapter_settings, revert_chapter_settings
from sandbox.lab.plots import compare_plot, timeline, usage_plot
from sandbox.lab.postgres import available, pg_connections, postgres_env, start_postgres
from sandbox.lab.servers import PortInUse, ServerError, start_server, start_upstream, stop_all
from sandbox.lab.services import ServiceMissing, start_redis, start_worker
from sandbox.lab.trace import Hops, InFlight, Tracer, count_hops, where

__all__ = [
    "LoadResult",
    "PortInUse",
    "ServerError",
    "ServiceMissing",
    "Hops",
    "InFlight",
    "Tracer",
    "UNSAFE_allow_sync_orm_in_event_loop",
    "apply_chapter_settings",
    "available",
    "boot",
    "client",
    "compare_plot",
    "compare_servers",
    "compare_table",
    "count_hops",
    "data_dir",
    "expect_raises",
    "fire",
    "hold_websockets",
    "locust",
    "pg_connections",
    "quiz",
    "reveal",
    "postgres_env",
    "revert_chapter_settings",
    "sample",
    "serve",
    "show_source",
    "sized",
    "start_postgres",
    "start_redis",
    "start_server",
    "start_upstream",
    "start_worker",
    "stop_all",
    "timeline",
    "usage_plot",
    "where",
]
