"""The lab toolkit in the test process: boot, guards, tracer, in-process client, load helpers."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import SynchronousOnlyOperation


async def test_boot_is_idempotent_and_never_allows_unsafe(lab):
    first = await lab.boot()
    assert await lab.boot() is first
    assert "DJANGO_ALLOW_ASYNC_UNSAFE" not in os.environ
    # named after the session that booted this process first (the `lab` fixture's, or another test's)
    assert first.items == 6 and first.data_dir.name == f"{first.notebook}-{os.getpid()}"
    assert repr(first) == f"sandbox ready: Django 6.1.3, 6 catalogue items, data in .course-data/{first.notebook}-*"


def test_boot_in_a_fresh_process_prints_nothing_and_seeds_the_same_rows(tmp_path):
    code = ("import asyncio\nfrom sandbox import lab\ninfo = asyncio.run(lab.boot())\n"
            "from sandbox.catalog.models import Item\n"
            "print(asyncio.run(Item.objects.order_by('name').values_list('name', flat=True).afirst()))")
    env = {**os.environ, "COURSE_DATA_ROOT": str(tmp_path), "JPY_SESSION_NAME": "fresh.ipynb"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "Cinnamon bun\n"
    assert [p.name.rsplit("-", 1)[0] for p in tmp_path.iterdir()] == ["fresh"]


def test_prune_removes_only_dirs_of_dead_kernels(tmp_path):
    from sandbox.lab.boot import prune_data_dirs

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / f"old-{dead.stdout.strip()}").mkdir()
    (tmp_path / f"mine-{os.getpid()}").mkdir()
    (tmp_path / "backups").mkdir()
    prune_data_dirs(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backups", f"mine-{os.getpid()}"]


def test_expect_raises_fails_when_nothing_is_raised(lab, capsys):
    with pytest.raises(AssertionError, match="expected SynchronousOnlyOperation, but nothing was raised"):
        with lab.expect_raises(SynchronousOnlyOperation):
            pass
    with lab.expect_raises(ValueError, match="bad"):
        raise ValueError("bad input")
    assert capsys.readouterr().out == "raised ValueError: bad input\n"
    with pytest.raises(AssertionError, match="does not match"):
        with lab.expect_raises(ValueError, match="other"):
            raise ValueError("bad input")


async def test_sync_orm_fails_in_the_loop_and_the_escape_hatch_is_scoped(lab):
    from sandbox.catalog.models import Item

    with lab.expect_raises(SynchronousOnlyOperation):
        Item.objects.count()
    with lab.UNSAFE_allow_sync_orm_in_event_loop():
        inside = Item.objects.count()
    with lab.expect_raises(SynchronousOnlyOperation):
        Item.objects.count()

    assert inside == 6
    assert "DJANGO_ALLOW_ASYNC_UNSAFE" not in os.environ


async def test_tracer_tells_the_loop_from_a_worker_thread(lab):
    tracer = lab.Tracer()

    @tracer.traced
    def sync_step():
        return 1

    tracer.mark("in the loop")
    await sync_to_async(sync_step)()
    await asyncio.to_thread(tracer.mark, "to_thread")

    kinds = {label: kind for _, label, _, kind in tracer.steps}
    assert kinds == {"in the loop": "event loop", "sync_step": "worker thread", "to_thread": "worker thread"}
    assert tracer.threads()["in the loop"] == "MainThread"
    assert tracer.table().splitlines()[0].startswith("step")


async def test_client_has_a_deadline(lab):
    with pytest.raises(TimeoutError, match=r"GET /wait/async/ took longer than 0.3 s"):
        async with lab.client(timeout=0.3) as c:
            await c.get("/wait/async/?s=5")


async def test_fire_records_each_request_and_the_timeline_draws_them(lab):
    async with lab.client() as c:
        sync_run, blocking = await lab.fire(c, "/wait/sync/?s=0.3", 4), await lab.fire(c, "/wait/blocking/?s=0.1", 3)

    assert len(sync_run.records) == 4 and len(sync_run.threads) == 4 and not sync_run.errors
    assert all(r.status == 200 and r.end > r.start for r in sync_run.records)
    # the blocking async view runs on the loop's own thread: one after another
    assert blocking.threads == {"MainThread"} and blocking.wall > 0.25
    fig = lab.timeline(sync_run, blocking)
    assert len(fig.axes) == 2


@pytest.mark.slow  # daphne
async def test_websockets_are_held_sampled_and_broadcast_to(lab):
    server = await lab.start_server("daphne", quiet=True)
    try:
        async with lab.sample(server) as samples:
            async with lab.hold_websockets(server.ws_url + "/ws/hold/", 50) as conns:
                hellos = await asyncio.gather(*(asyncio.wait_for(c.recv(), 10) for c in conns))
                async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
                    await http.get("/broadcast/?text=hi")
                got = await asyncio.gather(*(asyncio.wait_for(c.recv(), 10) for c in conns))
    finally:
        server.stop()

    assert len(hellos) == 50 and all('"hello": true' in h for h in hellos)
    assert all('"broadcast": "hi"' in g for g in got)
    assert samples.rows and samples.peak_threads < 20 and samples.peak_rss_mb > 10
    assert lab.usage_plot(samples).axes


async def test_fire_records_requests_still_open_at_its_deadline(lab):
    async with lab.client(timeout=30) as c:
        result = await lab.fire(c, "/wait/async/?s=5", 3, timeout=0.3)
    assert result.wall < 5 and len(result.errors) == 3  # it did not wait for the 5 s views
    assert all(r.error.startswith("TimeoutError") and r.status is None for r in result.records)


async def test_stopping_the_upstream_forgets_its_url(lab):
    from django.conf import settings

    server = await lab.start_upstream(quiet=True)
    assert settings.UPSTREAM_URL == os.environ["SANDBOX_UPSTREAM_URL"] == server.url
    server.stop()
    assert settings.UPSTREAM_URL == "" and "SANDBOX_UPSTREAM_URL" not in os.environ


async def test_count_hops_counts_both_adapters_and_the_queries(lab):
    from asgiref.sync import async_to_sync

    from sandbox.catalog.models import Item

    def sync_side():
        async def inner():
            return 1

        return async_to_sync(inner)()

    with lab.count_hops() as hops:
        await Item.objects.acount()
        await sync_to_async(sync_side)()

    assert hops.to_thread == ["QuerySet.count", "test_count_hops_counts_both_adapters_and_the_queries.sync_side"]
    assert hops.to_loop == ["test_count_hops_counts_both_adapters_and_the_queries.sync_side.inner"]
    assert len(hops.queries) == 1 and hops.queries[0][1].startswith("SELECT COUNT(*)")
    assert hops.summary() == "2 sync_to_async + 1 async_to_sync = 3 hops"
