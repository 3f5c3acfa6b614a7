"""A pitfall, on purpose: pytest-django's `django_db` mark (without transaction=True) with an async test.

The mark wraps each test in a transaction on the test thread's connection and rolls it back afterwards. An async
test's ORM calls run through `sync_to_async` on another thread, with another connection, outside that
transaction: what they write is committed, and the next test sees it. The second test fails.
"""

from __future__ import annotations

import pytest

from sandbox.considerations.models import PageCount


@pytest.mark.asyncio
@pytest.mark.django_db
async def test_counts_a_visit(async_client):
    response = await async_client.get("/considerations/visit/db/pricing/")
    assert response.status_code == 200
    assert (await PageCount.objects.aget(name="pricing")).value == 1


@pytest.mark.asyncio
@pytest.mark.django_db
async def test_starts_from_an_empty_table():
    assert await PageCount.objects.acount() == 0
