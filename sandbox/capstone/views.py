"""The course's own views of the auction: a lot's state, and a naive bid view that the lesson measures."""

from django.http import JsonResponse
from django.shortcuts import aget_object_or_404
from django.views.decorators.http import require_POST

from sandbox.capstone.auction import accepted, fraud_check_client, fraud_check_url, outbid, price_message, read_bid
from sandbox.capstone.models import Bid, Lot


async def lot_detail(request, lot_id: int):
    """GET: the lot as a new WebSocket subscriber first sees it."""
    return JsonResponse(price_message(await aget_object_or_404(Lot, pk=lot_id)))


@require_POST
async def place_bid_naive(request, lot_id: int):
    """A mistake on purpose: read the price, compare in Python, write the new price (read-modify-write).

    Fully async, and wrong: two bids that both read the old price both "win", and the one that writes last
    sets the price, even when it is the lower bid (a lost update). Nothing is announced.
    """
    bidder, amount = read_bid(request)
    async with fraud_check_client() as client:
        (await client.get(fraud_check_url(bidder, amount))).raise_for_status()
    lot = await aget_object_or_404(Lot, pk=lot_id)
    if lot.closed or amount <= lot.current_price:
        return await outbid(lot_id)
    lot.current_price = amount  # another request may have raised the price since we read it
    await lot.asave(update_fields=["current_price"])
    return accepted(await Bid.objects.acreate(lot=lot, bidder=bidder, amount=amount))
