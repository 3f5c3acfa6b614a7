"""The sandbox project tested like any Django project: views with AsyncClient, the consumer with
WebsocketCommunicator."""

from __future__ import annotations

import asyncio

import httpx
import pytest


async def test_catalogue_views(lab):
    from django.test import AsyncClient

    client = AsyncClient(raise_request_exception=False)  # see the 500 a browser would get
    items, items_sync, wrong = [await client.get(p)
                                for p in ("/catalog/items/", "/catalog/items-sync/", "/catalog/count-wrong/")]
    assert items.status_code == items_sync.status_code == 200
    assert items.json() == items_sync.json() and len(items.json()["items"]) == 6
    assert wrong.status_code == 500  # the sync ORM inside an async view: SynchronousOnlyOperation


@pytest.mark.parametrize(("path", "thread"), [("/wait/async/?s=0.05", "MainThread"),
                                              ("/wait/sync/?s=0.05", "ThreadPoolExecutor"),
                                              ("/cpu/async/?n=1000", "MainThread"),
                                              ("/cpu/sync/?n=1000", "ThreadPoolExecutor")])
async def test_paired_views_say_which_thread_ran_them(lab, path, thread):
    async with lab.client() as c:
        response = await c.get(path)
    assert response.status_code == 200 and response.json()["thread"].startswith(thread)


async def test_fanout_views_need_a_loopback_upstream(lab):
    async with lab.client() as c:
        response = await c.get("/fanout/async/?upstream=http://example.com")
    assert response.status_code == 400 and "upstream must be on loopback" in response.json()["error"]


async def test_fanout_views_call_the_upstream_concurrently_or_one_by_one(lab):
    upstream = await lab.start_upstream(quiet=True)
    found = []
    async with lab.client(timeout=20) as c, httpx.AsyncClient(base_url=upstream.url, timeout=10) as http:
        for style in ("async", "sync"):
            await http.get("/reset")
            body = (await c.get(f"/fanout/{style}/?n=4&s=0.3")).json()
            found.append((body, (await http.get("/stats")).json()["max_in_flight"]))

    (fan_async, together), (fan_sync, one_at_a_time) = found
    assert [r["i"] for r in fan_async["results"]] == [r["i"] for r in fan_sync["results"]] == [0, 1, 2, 3]
    assert (together, one_at_a_time) == (4, 1)  # counted by the upstream


async def test_stream_sends_ticks(lab):
    async with lab.client() as c, c.stream("GET", "/stream/?s=0.3&every=0.1") as response:
        lines = [line async for line in response.aiter_lines()]
    assert [line.split()[:2] for line in lines] == [["tick", "0"], ["tick", "1"], ["tick", "2"]]


async def test_hold_consumer_greets_echoes_and_broadcasts(lab):
    from channels.layers import get_channel_layer
    from channels.testing import WebsocketCommunicator

    from sandbox.asgi import application

    communicator = WebsocketCommunicator(application, "/ws/hold/", headers=[(b"origin", b"http://127.0.0.1")])
    connected, _ = await communicator.connect(timeout=5)
    hello = await communicator.receive_json_from(timeout=5)
    await communicator.send_to(text_data="ping")
    echo = await communicator.receive_json_from(timeout=5)
    await get_channel_layer().group_send("hold", {"type": "hold.message", "text": "all"})
    broadcast = await communicator.receive_json_from(timeout=5)
    await communicator.disconnect()
    assert connected and hello["hello"] is True and echo == {"echo": "ping"} and broadcast["broadcast"] == "all"


async def test_a_websocket_without_an_allowed_origin_is_refused(lab):
    from channels.testing import WebsocketCommunicator

    from sandbox.asgi import application

    results = []
    for headers in ([], [(b"origin", b"http://evil.example")]):
        communicator = WebsocketCommunicator(application, "/ws/hold/", headers=headers)
        connected, _ = await communicator.connect(timeout=5)
        results.append(connected)
    assert results == [False, False]


async def test_upstream_counts_requests_in_flight(lab):
    import httpx

    server = await lab.start_upstream(quiet=True)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as c:
        await c.get("/reset")
        await asyncio.gather(*(c.get(f"/slow?s=0.2&i={i}") for i in range(3)))
        await c.get("/slow?s=0")
        stats, failed = (await c.get("/stats")).json(), (await c.get("/fail?s=0")).status_code
    assert stats == {"in_flight": 0, "max_in_flight": 3, "served": 4} and failed == 503
