"""Deterministic seed data, so every notebook run prints the same rows."""

from __future__ import annotations

from decimal import Decimal

from sandbox.catalog.models import Category, Item

ITEMS = [
    # (name, price, in stock, category)
    ("Espresso", "2.50", True, "coffee"),
    ("Flat white", "3.40", True, "coffee"),
    ("Cold brew", "3.90", False, "coffee"),
    ("Croissant", "2.20", True, "bakery"),
    ("Cinnamon bun", "2.80", True, "bakery"),
    ("Sourdough loaf", "5.50", False, "bakery"),
]


async def aseed() -> int:
    """Create the seed rows if the catalogue is empty; return how many items exist. Idempotent."""
    if await Item.objects.aexists():
        return await Item.objects.acount()
    categories = {}
    for name in sorted({row[3] for row in ITEMS}):
        categories[name], _ = await Category.objects.aget_or_create(name=name)
    await Item.objects.abulk_create(
        Item(name=n, price=Decimal(p), in_stock=s, category=categories[c]) for n, p, s, c in ITEMS
    )
    return await Item.objects.acount()
