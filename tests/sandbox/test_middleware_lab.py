"""Chapter 05's app: the document's middleware fails as the lesson says, the three patterns work in both modes,
and the probes count what they claim to count."""

from __future__ import annotations

import gc
import logging
import sys
import warnings

import pytest

MW = "sandbox.middleware_lab.middleware."
PATTERNS = [MW + "hybrid_middleware", MW + "AsyncOnlyMiddleware", MW + "DualPathMiddleware"]


async def _asgi_get(lab, stack, path="/mw/trail/"):
    """One request through a fresh ASGIHandler; returns the response, the adapted lines and the request errors."""
    from django.core.handlers.asgi import ASGIHandler
    from django.core.signals import got_request_exception
    from django.test import override_settings

    from sandbox.lab.experiments.middleware_probe import adapted_log

    errors = []

    def record(sender, **kwargs):
        errors.append(sys.exc_info()[1])

    got_request_exception.connect(record, weak=False)
    try:
        with override_settings(MIDDLEWARE=stack):
            with adapted_log() as adapted:
                handler = ASGIHandler()
            async with lab.client(handler) as c:
                response = await c.get(path)
    finally:
        got_request_exception.disconnect(record)
    return response, adapted, errors


def _wsgi_get(stack, path="/mw/trail/"):
    """The WSGI code path: Django's sync test Client (a test function runs outside any event loop)."""
    from django.test import Client, override_settings

    from sandbox.lab.experiments.middleware_probe import adapted_log

    with override_settings(MIDDLEWARE=stack), adapted_log() as adapted:
        response = Client().get(path)
    return response, [line for line in adapted if "adapted" in line]


async def test_trail_views_answer_with_where_they_ran(lab):
    async with lab.client() as c:
        trail, trail_sync = await c.get("/mw/trail/"), await c.get("/mw/trail-sync/")
    assert trail.status_code == trail_sync.status_code == 200
    assert trail.json()["trail"][-1] == {"step": "view (async)", "thread": "MainThread", "where": "event loop"}
    assert trail_sync.json()["trail"][-1]["where"] == "worker thread"


async def test_document_middleware_fails_every_asgi_request(lab):
    response, _, errors = await _asgi_get(lab, [MW + "AsyncMiddleware"])
    assert response.status_code == 500
    assert [str(e) for e in errors] == ["sync_to_async can only be applied to sync functions."]


def test_document_middleware_returns_a_coroutine_under_wsgi(lab):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(AttributeError, match="'coroutine' object has no attribute '_resource_closers'"):
            _wsgi_get([MW + "AsyncMiddleware"])
        gc.collect()
    assert "coroutine 'AsyncMiddleware.process_request' was never awaited" in [str(w.message) for w in caught]


@pytest.mark.parametrize(("path", "header", "asgi_step", "wsgi_step"), [
    ("hybrid_middleware", "X-Hybrid", "hybrid_middleware (async)", "hybrid_middleware (sync)"),
    ("AsyncOnlyMiddleware", "X-Async-Only", "AsyncOnlyMiddleware", "AsyncOnlyMiddleware"),
    ("DualPathMiddleware", "X-Dual-Path", "DualPathMiddleware.__acall__ (async)",
     "DualPathMiddleware.process_request (sync)"),
])
def test_each_pattern_runs_natively_under_asgi_and_works_under_wsgi(lab, run, path, header, asgi_step, wsgi_step):
    response, adapted, errors = run(_asgi_get(lab, [MW + path]))
    assert response.status_code == 200 and not errors and adapted == []
    assert response.headers[header] == "async"
    assert response.json()["trail"][0] == {"step": asgi_step, "thread": "MainThread", "where": "event loop"}

    response, adapted = _wsgi_get([MW + path])
    assert response.status_code == 200 and response.json()["trail"][0]["step"] == wsgi_step
    if path == "AsyncOnlyMiddleware":  # async-only under WSGI: Django adapts it, and it still works
        assert adapted == [f"Synchronous handler adapted for middleware {MW}AsyncOnlyMiddleware."]
        assert response.headers[header] == "async"
    else:
        assert adapted == [] and response.headers[header] == "sync"


async def test_pause_is_really_awaited(lab):
    import time

    start = time.perf_counter()
    response, _, _ = await _asgi_get(lab, PATTERNS, "/mw/trail/?pause=0.1")
    assert response.status_code == 200 and time.perf_counter() - start >= 0.3


async def _hops(lab, stack):
    from django.core.handlers.asgi import ASGIHandler
    from django.test import override_settings

    from sandbox.lab.trace import count_hops

    with override_settings(MIDDLEWARE=stack):
        async with lab.client(ASGIHandler()) as c:
            await c.get("/mw/trail/")
            with count_hops() as hops:
                assert (await c.get("/mw/trail/")).status_code == 200
    return hops


async def test_hop_counts_the_lesson_prints(lab):
    from django.conf import settings

    built_ins = list(settings.MIDDLEWARE)
    sync_only = MW + "SyncOnlyMiddleware"
    totals = {name: (await _hops(lab, stack)).total for name, stack in {
        "none": [], "patterns": PATTERNS, "built-ins": built_ins,
        "outer": [sync_only, *built_ins], "inner": [*built_ins, sync_only],
        "split": [sync_only, MW + "AsyncOnlyMiddleware", MW + "OtherSyncOnlyMiddleware"],
        "grouped": [sync_only, MW + "OtherSyncOnlyMiddleware", MW + "AsyncOnlyMiddleware"],
    }.items()}
    assert totals == {"none": 2, "patterns": 2, "built-ins": 9, "outer": 11, "inner": 4, "split": 6, "grouped": 4}


def test_probes_restore_what_they_change():
    from asgiref.sync import AsyncToSync, SyncToAsync

    from sandbox.lab.experiments.middleware_probe import adapted_log
    from sandbox.lab.trace import count_hops

    logger = logging.getLogger("django.request")
    before = (SyncToAsync.__call__, AsyncToSync.__call__, logger.level, logger.propagate, list(logger.handlers))
    with count_hops(), adapted_log():
        assert SyncToAsync.__call__ is not before[0] and logger.level == logging.DEBUG
    assert (SyncToAsync.__call__, AsyncToSync.__call__, logger.level, logger.propagate, logger.handlers) == before


async def test_probes_serve_middleware_defined_in_a_cell_both_ways(lab, capsys):
    """The lesson's middleware live in cells: `through_asgi` serves them with `lab.serve`, `through_wsgi` through the
    sync Client in a fresh thread (no event loop there, so an async view runs on a loop of its own)."""
    from sandbox.lab.experiments import middleware_probe as probe
    from sandbox.middleware_lab.middleware import SyncOnlyMiddleware, hybrid_middleware
    from sandbox.middleware_lab.views import trail

    class Counting(SyncOnlyMiddleware):  # a class made here, as a cell would make it
        calls = 0

        def __call__(self, request):
            type(self).calls += 1
            return super().__call__(request)

    response, adapted = await probe.through_asgi(trail, [hybrid_middleware, Counting])
    assert response.status_code == 200 and Counting.calls == 1
    assert len(adapted) == 1 and adapted[0].startswith("Asynchronous handler adapted for middleware")
    response, adapted, never_awaited = await probe.through_wsgi(trail, [hybrid_middleware, Counting])
    assert response.status_code == 200 and Counting.calls == 2 and adapted == [] and never_awaited == []
    steps = response.json()["trail"]
    assert steps[0]["thread"] == "wsgi-request_0" and steps[-1]["thread"] not in ("MainThread", "wsgi-request_0")
    await probe.both_ways(trail, [hybrid_middleware])
    assert "X-Hybrid': 'async'" in capsys.readouterr().out


async def test_peak_threads_counts_one_thread_per_request_in_flight(lab):
    from sandbox.lab.experiments import middleware_probe as probe
    from sandbox.middleware_lab.views import trail

    async with lab.serve(trail, middleware=[], timeout=30) as c:
        run, peak = await probe.peak_threads(c, "/?s=0.5", 20)
    assert not run.errors and peak >= 20  # Django's ASGI handler gives each request in flight a thread
