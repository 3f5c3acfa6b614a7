"""What the course provides to the auction's live parts: names, messages, and the small pieces around a bid.

The live parts (a view, a consumer, a task) are the learner's package, `auction_live`, or the course's reference
implementation, `sandbox.capstone.reference`; both import these, so a lesson, a check and a worker agree on
every name and every message.
"""

from __future__ import annotations

import json
import os
import ssl

import httpx
from django.conf import settings
from django.core.exceptions import BadRequest
from django.http import JsonResponse
from django.shortcuts import aget_object_or_404

from sandbox.capstone.models import Bid, Lot

FRAUD_CHECK_SECONDS = 0.3  # how long the fraud-check service takes to answer (the slow upstream's /slow)
NO_SUCH_LOT = 4404  # the feed's close code for a lot that does not exist (4000-4999 are free for applications)


def process_name() -> str:
    """Which process runs this, and its pid: the course starts daphne and the worker with CAPSTONE_PROCESS set."""
    return f"{os.environ.get('CAPSTONE_PROCESS', 'kernel')} (pid {os.getpid()})"


def group_name(lot_id: int) -> str:
    """The channel-layer group of one lot: every WebSocket watching the lot joins it."""
    return f"lot-{lot_id}"


def price_message(lot: Lot) -> dict:
    """What a WebSocket receives first when it starts watching a lot."""
    return {"type": "price", "lot": lot.pk, "title": lot.title, "current_price": lot.current_price,
            "closed": lot.closed}


def bid_event(bid: Bid) -> dict:
    """The group message that announces an accepted bid.

    Its `type` names the consumer's handler: Channels calls `bid_placed` for "bid.placed". Reading
    `bid.lot.title` needs the lot already loaded (`select_related("lot")`): in async code a lazy foreign key
    would run a query on the event loop's thread, which Django refuses.
    """
    return {"type": "bid.placed", "lot": bid.lot_id, "title": bid.lot.title, "bid": bid.pk, "bidder": bid.bidder,
            "amount": bid.amount, "sent_by": process_name()}


def read_bid(request) -> tuple[str, int]:
    """The bidder and the amount from a JSON body, `{"bidder": "ada", "amount": 120}`; a 400 when they are bad."""
    try:
        data = json.loads(request.body)
        bidder, amount = str(data["bidder"]), data["amount"]
    except (ValueError, KeyError, TypeError):
        raise BadRequest('send JSON: {"bidder": "...", "amount": 120}') from None
    if not bidder or not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise BadRequest("the bidder needs a name, and the amount is a whole number of euros above 0")
    return bidder, amount


def fraud_check_url(bidder: str, amount: int) -> str:
    """The fraud-check service's address for one bid: the slow upstream, which answers after 0.3 s."""
    if not settings.UPSTREAM_URL:
        raise RuntimeError("no fraud-check service: start it with `await lab.start_upstream()` before the app")
    return f"{settings.UPSTREAM_URL}/slow?s={FRAUD_CHECK_SECONDS}&i={amount}"


_tls: ssl.SSLContext | None = None


def fraud_check_client() -> httpx.AsyncClient:
    """An `httpx.AsyncClient` for the fraud check (use it as `async with fraud_check_client() as client:`).

    `httpx.AsyncClient()` builds a TLS context and loads the CA certificates into it: tens of ms of CPU, spent on
    the event loop, for every client. This one is built on a TLS context made once per process by httpx's own
    `create_ssl_context()` (the context a client makes for itself), so a new client costs next to nothing.
    """
    global _tls
    if _tls is None:
        _tls = httpx.create_ssl_context()
    return httpx.AsyncClient(timeout=5, verify=_tls)


def accepted(bid: Bid) -> JsonResponse:
    """201: the bid raised the price."""
    return JsonResponse({"accepted": True, "bid": bid.pk, "current_price": bid.amount,
                         "served_by": process_name()}, status=201)


async def outbid(lot_id: int) -> JsonResponse:
    """409 with the lot's price, when a bid did not raise it (404 when there is no such lot)."""
    lot = await aget_object_or_404(Lot, pk=lot_id)
    return JsonResponse({"accepted": False, "current_price": lot.current_price, "closed": lot.closed,
                         "served_by": process_name()}, status=409)
