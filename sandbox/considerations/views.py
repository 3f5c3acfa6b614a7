"""Views for chapter 08: a database view for counting connections, and a visit counter done wrong and right.

Every view answers with the thread that ran it, so a load test can show who did the work.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time

from asgiref.sync import sync_to_async
from django.db import connection
from django.db.models import F
from django.http import JsonResponse

from sandbox.catalog.models import Item
from sandbox.concurrency.views import _who
from sandbox.considerations.models import PageCount

# --- Database connections ------------------------------------------------------------------------------------

def _query() -> dict:
    """One query, and which connection ran it: PostgreSQL's process id for that connection, and our thread."""
    items = Item.objects.count()
    backend = None
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend = cursor.fetchone()[0]
    return {"items": items, "backend_pid": backend, "db_thread": threading.current_thread().name}


async def db_wait(request):
    """Runs a query, then waits `s` seconds (the rest of a request: an upstream call, a template...).

    The query runs the way the async ORM runs every query: in `sync_to_async`, thread-sensitive.
    """
    facts = await sync_to_async(_query)()
    await asyncio.sleep(float(request.GET.get("s", 0.2)))
    return JsonResponse(_who(view="db_wait", **facts))


def db_wait_sync(request):
    """The same work in a sync view, for the WSGI baseline."""
    facts = _query()
    time.sleep(float(request.GET.get("s", 0.2)))
    return JsonResponse(_who(view="db_wait_sync", **facts))


def collect_garbage(request):
    """Runs Python's garbage collector in the server: what finally closes connections nobody can reach."""
    return JsonResponse(_who(view="collect_garbage", unreachable=gc.collect()))


# --- Shared state ------------------------------------------------------------------------------------------

VISITS: dict[str, int] = {}  # module-level: shared by every request this process serves, and only this process
VISITS_LOCK = asyncio.Lock()  # one lock for the one dict; it serves one event loop (the server's)


async def record_visit(page: str) -> None:
    """Stands for any await between the read and the write: a cache call, an upstream call, a log shipper."""
    await asyncio.sleep(0.01)


async def visit_unsafe(request, page: str):
    """Read, await, write: while this request awaits, others read the same old count."""
    count = VISITS.get(page, 0)
    await record_visit(page)
    VISITS[page] = count + 1
    return JsonResponse(_who(view="visit_unsafe", page=page, visits=VISITS[page]))


async def visit_locked(request, page: str):
    """The same, with the read-await-write inside one critical section: one request at a time in it."""
    async with VISITS_LOCK:
        count = VISITS.get(page, 0)
        await record_visit(page)
        VISITS[page] = count + 1
    return JsonResponse(_who(view="visit_locked", page=page, visits=count + 1))


def visit_sync_unsafe(request, page: str):
    """A sync view is no safer: under ASGI each request runs in its own thread, at the same time as the others."""
    count = VISITS.get(page, 0)
    time.sleep(0.01)
    VISITS[page] = count + 1
    return JsonResponse(_who(view="visit_sync_unsafe", page=page, visits=VISITS[page]))


async def visit_db(request, page: str):
    """No shared state in the process: the database adds one, atomically, for every process at once."""
    await PageCount.objects.aget_or_create(name=page)
    await record_visit(page)
    await PageCount.objects.filter(name=page).aupdate(value=F("value") + 1)
    return JsonResponse(_who(view="visit_db", page=page))
