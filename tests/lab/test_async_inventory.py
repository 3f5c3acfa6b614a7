"""Chapter 02's introspection (sandbox.lab.experiments.async_inventory) finds what the lesson says it finds."""

from __future__ import annotations

import pytest


@pytest.fixture
def inventory(lab):
    from sandbox.lab.experiments import async_inventory

    return async_inventory


def test_release_lookup_names_kinds_and_fails_on_a_missing_api(inventory):
    rows = inventory.look_up([("4.1", "", "django.db.models.query.QuerySet.acount"),
                              ("3.1", "", "django.test.AsyncClient")])
    assert [r[3] for r in rows] == ["async def", "class"]
    with pytest.raises(AttributeError):
        inventory.look_up([("9.9", "", "django.db.models.query.QuerySet.aall")])


def test_async_methods_of_a_queryset_and_the_guard_on_the_connection(inventory):
    from django.db import connections
    from django.db.models.query import QuerySet

    names = inventory.async_methods(QuerySet)
    assert "acount" in names and "aiterator" in names and "aall" not in names
    guarded = inventory.guarded_methods(type(connections["default"]))
    assert {"connect", "cursor", "commit", "close"} <= set(guarded)


def test_no_cache_backend_or_mail_module_does_its_own_async_io(inventory):
    import django.core.mail
    import django.tasks.backends

    own = inventory.cache_backends_own_async()
    assert "locmem.LocMemCache" in own and "redis.RedisCache" in own
    assert not any(own.values())
    assert inventory.async_defs_in(django.core.mail) == []
    assert sorted(inventory.submodules(django.tasks.backends, but="base")) == ["dummy", "immediate"]
