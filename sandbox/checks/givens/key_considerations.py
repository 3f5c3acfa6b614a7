"""Chapter 08's givens: the payment provider of exercise 'seat-lock', and the view under test of 'async-test'."""

from __future__ import annotations

import asyncio
import contextvars

from django.http import JsonResponse

# --- 'seat-lock': the payment provider ---------------------------------------------------------------------------

PAYMENT_SECONDS = 0.05

current_buyer = contextvars.ContextVar("seat_buyer", default=None)  # (concert, buyer): the check sets it per request
inventories: dict[str, dict] = {}  # {concert: its inventory}: the check fills it for each run
charges: list[tuple] = []  # (concert, buyer, seats left when the card was charged)


async def charge_card() -> None:
    """The payment provider: a network call. While one request waits here, the event loop runs the others."""
    who = current_buyer.get() or (None, None)
    inventory = inventories.get(who[0])
    charges.append((*who, inventory.get("left") if inventory else None))
    await asyncio.sleep(PAYMENT_SECONDS)


# --- 'async-test': the view under test ---------------------------------------------------------------------------

API_KEY = "letmein"
MENU = ["espresso", "latte"]
seen_headers: list[dict] = []  # the headers of every request menu_view got; the check clears it, then reads it


async def menu_view(request):
    """The view under test, written right: 403 without the key, the menu with it."""
    seen_headers.append(dict(request.headers))
    if request.headers.get("X-Api-Key") != API_KEY:
        return JsonResponse({"error": "a valid X-Api-Key header is required"}, status=403)
    return JsonResponse({"menu": MENU})
