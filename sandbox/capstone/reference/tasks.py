"""The auction's background work, run by a worker process (django-tasks-db's `db_worker`)."""

from channels.layers import get_channel_layer
from django.tasks import task

from sandbox.capstone.auction import bid_event, group_name
from sandbox.capstone.models import Bid


@task
async def announce_bid(bid_id: int) -> dict:
    """Tell every WebSocket watching the bid's lot, through the channel layer (Redis: it crosses processes)."""
    bid = await Bid.objects.select_related("lot").aget(pk=bid_id)
    event = bid_event(bid)
    await get_channel_layer().group_send(group_name(bid.lot_id), event)
    return event
