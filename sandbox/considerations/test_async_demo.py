"""Async tests of the sandbox, in the three styles chapter 08 runs: Django's TestCase with `async def` methods,
pytest-django with pytest-asyncio, and a Channels consumer driven by `WebsocketCommunicator`.

The course's own test run leaves this file alone (pytest-django is off there); the notebook runs it with its own
configuration: `python -m pytest -c <ini> -p django sandbox/considerations/test_async_demo.py`.
"""

from __future__ import annotations

import pytest
from channels.testing import WebsocketCommunicator
from django.test import TestCase

from sandbox.considerations.consumers import ShoutConsumer
from sandbox.considerations.models import PageCount


class VisitTests(TestCase):
    """An `async def` test method of Django's TestCase runs in an event loop Django starts for it; the database
    is rolled back after each test, as for sync tests."""

    async def test_counts_visits(self):
        for _ in range(2):
            response = await self.async_client.get("/considerations/visit/db/home/")
            self.assertEqual(response.status_code, 200)
        self.assertEqual((await PageCount.objects.aget(name="home")).value, 2)

    async def test_starts_from_an_empty_table(self):
        self.assertEqual(await PageCount.objects.acount(), 0)

    async def test_headers_without_http_prefix(self):
        sent = await self.async_client.get("/views/hello/?s=0", headers={"accept": "text/plain"})
        as_keyword = await self.async_client.get("/views/hello/?s=0", ACCEPT="text/plain")
        wsgi_style = await self.async_client.get("/views/hello/?s=0", HTTP_ACCEPT="text/plain")
        self.assertEqual(sent.json()["accept"], "text/plain")
        self.assertEqual(as_keyword.json()["accept"], "text/plain")
        self.assertIsNone(wsgi_style.json()["accept"])  # it arrived as a header named "http-accept"


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_visit_with_pytest(async_client):
    """pytest-django's `async_client` fixture is an AsyncClient; pytest-asyncio runs the coroutine. The async
    ORM runs in another thread, so the database needs transaction=True (see test_async_pitfall.py)."""
    response = await async_client.get("/considerations/visit/db/about/")
    assert response.status_code == 200
    assert (await PageCount.objects.aget(name="about")).value == 1


@pytest.mark.asyncio
@pytest.mark.django_db  # Channels closes stale database connections on connect, receive and disconnect
async def test_shout_consumer():
    communicator = WebsocketCommunicator(ShoutConsumer.as_asgi(), "/ws/shout/")
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    await communicator.send_to(text_data="hello")
    assert await communicator.receive_from(timeout=5) == "HELLO"
    await communicator.disconnect(timeout=5)
