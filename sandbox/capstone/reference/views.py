"""The auction's HTTP side: placing a bid."""

from django.views.decorators.http import require_POST

from sandbox.capstone.auction import accepted, fraud_check_client, fraud_check_url, outbid, read_bid
from sandbox.capstone.models import Bid, Lot
from sandbox.capstone.reference.tasks import announce_bid


@require_POST
async def place_bid(request, lot_id: int):
    """POST {"bidder": "ada", "amount": 120}: 201 when the bid raised the price, 409 when it did not."""
    bidder, amount = read_bid(request)  # a 400 for a bad body
    # The fraud check: another service, 0.3 s away. Awaiting it leaves the event loop free for other requests.
    async with fraud_check_client() as client:
        check = await client.get(fraud_check_url(bidder, amount))
    check.raise_for_status()
    # One UPDATE ... WHERE current_price < amount: the database compares and writes in one statement, so two
    # bids at once cannot both read the old price and both "win". Its result is the number of rows it changed.
    raised = await Lot.objects.filter(pk=lot_id, closed=False, current_price__lt=amount).aupdate(
        current_price=amount)
    if not raised:
        return await outbid(lot_id)
    bid = await Bid.objects.acreate(lot_id=lot_id, bidder=bidder, amount=amount)
    # Autocommit: the bid's row is committed already, so the worker will find it. Announcing is the worker's job.
    await announce_bid.aenqueue(bid.pk)
    return accepted(bid)
