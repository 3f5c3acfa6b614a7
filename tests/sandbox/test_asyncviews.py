"""The asyncviews app (chapter 03) tested like any Django project: in-process over ASGI, with AsyncClient,
and with an ASGI communicator for a client that disconnects mid-stream."""

from __future__ import annotations

import asyncio
import gc
import warnings

import httpx
import pytest


@pytest.fixture(scope="module")
def upstream(lab):
    """A slow upstream for this module; views get its address as `?upstream=`, whatever settings say."""
    server = asyncio.run(lab.start_upstream(quiet=True))
    yield server
    server.stop()


async def test_the_documents_async_view_serves_requests_concurrently(lab):
    async with lab.client() as c:
        body, three = (await c.get("/views/async/")).json(), await lab.fire(c, "/views/async/", 3)
    assert body == {"message": "Async response"} and not three.errors
    assert three.at_once(2) == 3  # three 2 s sleeps overlapped


async def test_async_class_based_view_answers_every_method_on_the_loop(lab):
    from sandbox.asyncviews.views import AsyncHello

    async with lab.client() as c:
        get, post, options, put = [await c.request(m, "/views/hello/?s=0", content=b"hi" if m == "POST" else None)
                                   for m in ("GET", "POST", "OPTIONS", "PUT")]
    assert AsyncHello.view_is_async is True
    assert get.json()["thread"] == post.json()["thread"] == "MainThread"
    assert post.json()["body"] == "hi"
    assert options.status_code == 200 and put.status_code == 405
    assert options.headers["allow"] == put.headers["allow"] == "GET, POST, HEAD, OPTIONS"


def test_a_class_mixing_sync_and_async_handlers_is_refused(lab):
    from django.core.exceptions import ImproperlyConfigured
    from django.http import JsonResponse
    from django.views import View

    class Mixed(View):
        async def get(self, request):
            return JsonResponse({})

        def post(self, request):
            return JsonResponse({})

    with pytest.raises(ImproperlyConfigured, match=r"Mixed HTTP handlers must either be all sync or all async\."):
        Mixed.as_view()


async def test_generic_list_view_is_sync_and_runs_in_a_worker_thread(lab):
    from sandbox.asyncviews.views import ItemList

    async with lab.client() as c:
        body = (await c.get("/views/items/")).json()
    assert ItemList.view_is_async is False
    assert len(body["items"]) == 6 and body["thread"].startswith("ThreadPoolExecutor")


async def _get_all(lab, paths, timeout=20):
    async with lab.client(timeout=timeout) as c:
        return [await c.get(p) for p in paths]


async def _calls_at_once(upstream, path: str, lab) -> tuple[httpx.Response, int]:
    """One request to `path`, and the most upstream calls it had in flight at once (the upstream counts them)."""
    async with httpx.AsyncClient(base_url=upstream.url, timeout=10) as http, lab.client(timeout=20) as c:
        await http.get("/reset")
        response = await c.get(path)
        return response, (await http.get("/stats")).json()["max_in_flight"]


async def test_dashboards_agree_and_the_async_one_overlaps_its_calls(lab, upstream):
    q = f"?s=0.3&upstream={upstream.url}"
    sync, one_at_a_time = await _calls_at_once(upstream, f"/views/dashboard/sync/{q}", lab)
    gathered, together = await _calls_at_once(upstream, f"/views/dashboard/gather/{q}", lab)
    assert sync.json()["parts"] == gathered.json()["parts"]
    assert list(gathered.json()["parts"]) == ["profile", "orders", "recommendations"]
    assert sync.json()["thread"] != "MainThread" and gathered.json()["thread"] == "MainThread"
    assert (one_at_a_time, together) == (1, 3)


async def test_one_failing_call_fails_gather_and_cancels_the_task_group(lab, upstream):
    q = f"?fail=recommendations&upstream={upstream.url}"
    gathered, grouped = await _get_all(lab, [f"/views/dashboard/gather/{q}", f"/views/dashboard/taskgroup/{q}"])
    assert gathered.status_code == 500 and "HTTPStatusError" in gathered.text
    assert grouped.status_code == 502
    assert grouped.json()["tasks"] == {"profile": "cancelled", "orders": "cancelled",
                                       "recommendations": "HTTPStatusError: 503 from /fail"}


async def test_partial_dashboard_keeps_what_answered_within_the_deadline(lab, upstream):
    (r,) = await _get_all(lab, [f"/views/dashboard/partial/?fail=recommendations&slow=orders&timeout=0.8"
                                f"&upstream={upstream.url}"])
    body = r.json()
    assert body["parts"] == {"profile": {"i": 0, "slept": 0.5}, "orders": {"error": "TimeoutError"},
                             "recommendations": {"error": "HTTPStatusError: 503 from /fail"}}


async def test_thread_sensitive_steps_share_a_thread_per_request_but_not_across_requests(lab):
    async with lab.client() as c:
        bodies = [r.json() for r in await asyncio.gather(*(c.get("/views/two-steps/?s=0.2") for _ in range(3)))]
    threads = [set(b["steps"]) for b in bodies]
    assert all(len(t) == 1 for t in threads) and len(set.union(*threads)) == 3
    assert all(b["elapsed"] >= 0.35 for b in bodies)  # the two steps of one request ran one after the other


async def test_async_to_sync_from_a_sync_view_runs_on_the_loop(lab):
    async with lab.client() as c:
        body = (await c.get("/views/sync-calls-async/")).json()
    assert body["thread"].startswith("ThreadPoolExecutor") and body["async_part_ran_on"] == "MainThread"


async def test_ticks_stream_server_sent_events(lab):
    async with lab.client() as c, c.stream("GET", "/views/ticks/?n=3&every=0.05") as response:
        content_type, lines = response.headers["content-type"], [line async for line in response.aiter_lines()]
    assert content_type == "text/event-stream"
    assert [line.split(",")[0] for line in lines if line] == [f'data: {{"tick": {i}' for i in range(3)]


async def test_a_sync_generator_is_buffered_with_a_warning(lab):
    with warnings.catch_warnings(record=True) as recorded:
        warnings.simplefilter("always")
        async with lab.client() as c:
            response = await c.get("/views/ticks/sync-generator/?n=2&every=0.05")
    caught = [str(w.message) for w in recorded]
    assert response.text.count("data:") == 2
    assert any(m.startswith("StreamingHttpResponse must consume synchronous iterators") for m in caught)


async def test_a_client_disconnect_cancels_the_stream(lab):
    from asgiref.testing import ApplicationCommunicator
    from django.core.handlers.asgi import ASGIHandler

    from sandbox.asyncviews.views import STREAM_LOG

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": "/views/ticks/", "raw_path": b"/views/ticks/", "query_string": b"n=50&every=0.1&id=hangup",
             "root_path": "", "headers": [(b"host", b"testserver")], "client": ("127.0.0.1", 1), "server": None}

    app = ApplicationCommunicator(ASGIHandler(), scope)
    await app.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await app.receive_output(5)
    first = await app.receive_output(5)
    await app.send_input({"type": "http.disconnect"})
    await app.wait(5)
    assert start["status"] == 200 and first["body"].startswith(b'data: {"tick": 0')
    assert [line for line in STREAM_LOG if line.startswith("stream hangup:")] == [
        "stream hangup: started", "stream hangup: CancelledError after 1 events (the client went away)"]


async def test_async_capable_decorators_keep_views_async(lab):
    import inspect

    from sandbox.asyncviews import views

    async with lab.client() as c:
        fresh, post, private, cached = [
            await c.request(m, p) for m, p in (("GET", "/views/fresh/"), ("POST", "/views/fresh/"),
                                               ("GET", "/views/private/"), ("GET", "/views/cached/"))]
    assert all(inspect.iscoroutinefunction(v) for v in (views.fresh, views.private, views.CachedHello.get))
    assert "no-store" in fresh.headers["cache-control"] and fresh.json()["thread"] == "MainThread"
    assert post.status_code == 405 and post.headers["allow"] == "GET"
    assert private.status_code == 302 and private.headers["location"] == "/accounts/login/?next=/views/private/"
    assert cached.headers["cache-control"] == "max-age=60, public"


async def test_async_client_takes_headers_without_the_http_prefix(lab):
    from django.test import AsyncClient

    client = AsyncClient()
    accepts = [(await client.get("/views/hello/?s=0", **kw)).json()["accept"]
               for kw in ({"headers": {"accept": "a/b"}}, {"ACCEPT": "a/b"}, {"HTTP_ACCEPT": "a/b"})]
    assert accepts == ["a/b", "a/b", None]


@pytest.mark.filterwarnings("ignore:coroutine 'timed_hello' was never awaited:RuntimeWarning")
async def test_a_homemade_sync_decorator_breaks_an_async_view(lab):
    import inspect

    from django.test import AsyncClient

    from sandbox.asyncviews import views

    with pytest.raises(TypeError, match="'coroutine' object does not support item assignment"):
        await AsyncClient().get("/views/timed/")
    async with lab.client() as c:
        response = await c.get("/views/timed/")

    assert not inspect.iscoroutinefunction(views.timed_hello)
    assert response.status_code == 500
    gc.collect()  # the un-awaited coroutines: their warning belongs to this test (and is filtered above)
