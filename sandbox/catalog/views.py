"""Catalogue views: the async ORM used right, and once wrong on purpose."""

from __future__ import annotations

from django.http import JsonResponse

from sandbox.catalog.models import Item


async def item_list(request):
    """Async view, async ORM: the queryset is evaluated with `async for`, never in the loop thread's sync path."""
    items = [
        {"name": item.name, "price": str(item.price), "category": item.category.name}
        async for item in Item.objects.select_related("category")
    ]
    return JsonResponse({"items": items})


def item_list_sync(request):
    """The same view written the classic way; Django runs it in a thread under ASGI."""
    items = [
        {"name": item.name, "price": str(item.price), "category": item.category.name}
        for item in Item.objects.select_related("category")
    ]
    return JsonResponse({"items": items})


async def item_count_wrong(request):
    """A mistake on purpose: the sync ORM inside an async view raises SynchronousOnlyOperation (HTTP 500)."""
    return JsonResponse({"count": Item.objects.count()})
