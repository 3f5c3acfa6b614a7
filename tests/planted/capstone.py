"""Planted answers for chapter 09, the capstone (a live auction)."""

from tests.planted.common import Acceptable, Planted

CHAPTER = "09-capstone"

_LOT = ("lot = await Lot.objects.filter(pk=self.lot_id).afirst()\n"
        "if lot is None:\n"
        "    await self.close(code=NO_SUCH_LOT)\n"
        "    return\n")
_JOIN = "await self.channel_layer.group_add(self.group, self.channel_name)\n"
_CHECK = ("async with fraud_check_client() as client:\n"
          "    check = await client.get(fraud_check_url(bidder, amount))\n"
          "check.raise_for_status()\n")
_SAVE = ("bid = await Bid.objects.acreate(lot_id=lot_id, bidder=bidder, amount=amount)\n"
         "await announce_bid.aenqueue(bid.pk)\n"
         "return accepted(bid)")


def _raise(*lookups: str) -> str:
    return (f"raised = await Lot.objects.filter({', '.join(lookups)}).aupdate(current_price=amount)\n"
            "if not raised:\n"
            "    return await outbid(lot_id)\n")


PLANTED: dict[str, list[Planted]] = {
    "lot-feed": [
        Planted("forgets to await group_add",
                _LOT + "self.channel_layer.group_add(self.group, self.channel_name)\n"
                       "await self.accept()\nawait self.send_json(price_message(lot))",
                "never awaited"),
        Planted("reads the lot with the sync ORM in connect()",
                "lot = Lot.objects.filter(pk=self.lot_id).first()\n"
                "if lot is None:\n    await self.close(code=NO_SUCH_LOT)\n    return\n"
                + _JOIN + "await self.accept()\nawait self.send_json(price_message(lot))",
                "event loop's thread"),
        Planted("accepts first, then closes the socket of a lot that does not exist",
                "lot = await Lot.objects.filter(pk=self.lot_id).afirst()\n" + _JOIN + "await self.accept()\n"
                "if lot is None:\n    await self.close(code=NO_SUCH_LOT)\n    return\n"
                "await self.send_json(price_message(lot))",
                "the handshake was accepted", "protocol"),
        Planted("joins the lot's group only after sending the price",
                _LOT + "await self.accept()\nawait self.send_json(price_message(lot))\n" + _JOIN.strip(),
                "missed a bid", "protocol"),
    ],
    "announce-bid": [
        Planted("reads bid.lot without select_related (a lazy foreign key in async code)",
                "bid = await Bid.objects.aget(pk=bid_id)\n"
                "event = bid_event(bid)\n"
                "await get_channel_layer().group_send(group_name(bid.lot_id), event)\n"
                "return event",
                "select_related"),
        Planted("forgets to await group_send",
                "bid = await Bid.objects.select_related(\"lot\").aget(pk=bid_id)\n"
                "event = bid_event(bid)\n"
                "get_channel_layer().group_send(group_name(bid.lot_id), event)\n"
                "return event",
                "never awaited"),
        Planted("sends the event to the group named after the bid's id, not its lot's",
                "bid = await Bid.objects.select_related(\"lot\").aget(pk=bid_id)\n"
                "event = bid_event(bid)\n"
                "await get_channel_layer().group_send(group_name(bid_id), event)\n"
                "return event",
                "named after the bid's id", "result"),
        Planted("sends the event but returns nothing",
                "bid = await Bid.objects.select_related(\"lot\").aget(pk=bid_id)\n"
                "await get_channel_layer().group_send(group_name(bid.lot_id), bid_event(bid))",
                "the task's result", "result"),
    ],
    "place-bid": [
        Planted("calls the fraud check with a sync HTTP call (httpx.get) in the async view",
                "import httpx\n\n"
                "check = httpx.get(fraud_check_url(bidder, amount), timeout=5)\n"
                "check.raise_for_status()\n" + _raise("pk=lot_id", "closed=False", "current_price__lt=amount")
                + _SAVE,
                "ran one at a time"),
        Planted("raises the price with a read-modify-write (read, compare in Python, save)",
                "from django.shortcuts import aget_object_or_404\n\n" + _CHECK +
                "lot = await aget_object_or_404(Lot, pk=lot_id)\n"
                "if lot.closed or amount <= lot.current_price:\n"
                "    return await outbid(lot_id)\n"
                "lot.current_price = amount\n"
                "await lot.asave()\n" + _SAVE,
                "lost updates", "concurrency"),
        Planted("takes \"lower than the price\" as lower or equal (current_price__lte)",
                _CHECK + _raise("pk=lot_id", "closed=False", "current_price__lte=amount") + _SAVE,
                "equal to the current price", "condition"),
        Planted("forgets that a closed lot takes no bids",
                _CHECK + _raise("pk=lot_id", "current_price__lt=amount") + _SAVE,
                "closed lot", "condition"),
    ],
}

ACCEPTABLE: dict[str, list[Acceptable]] = {
    "lot-feed": [
        Acceptable("joins the group first, reads the lot with aget, leaves the group when there is none",
                   _JOIN +
                   "try:\n"
                   "    lot = await Lot.objects.aget(pk=self.lot_id)\n"
                   "except Lot.DoesNotExist:\n"
                   "    await self.channel_layer.group_discard(self.group, self.channel_name)\n"
                   "    await self.close(NO_SUCH_LOT)\n"
                   "    return\n"
                   "await self.accept()\n"
                   "await self.send_json(content=price_message(lot))"),
    ],
    "announce-bid": [
        Acceptable("the lot read in a query of its own, group_send with keyword arguments",
                   "from sandbox.capstone.models import Lot\n\n"
                   "bid = await Bid.objects.aget(pk=bid_id)\n"
                   "bid.lot = await Lot.objects.aget(pk=bid.lot_id)\n"
                   "message = bid_event(bid)\n"
                   "layer = get_channel_layer()\n"
                   "await layer.group_send(group=group_name(bid.lot_id), message=message)\n"
                   "return message"),
    ],
    "place-bid": [
        Acceptable("keyword arguments (aenqueue(bid_id=...)), asave() on a new Bid, the lookups in another order",
                   "async with fraud_check_client() as client:\n"
                   "    answer = await client.get(fraud_check_url(bidder=bidder, amount=amount))\n"
                   "    answer.raise_for_status()\n"
                   "changed = await Lot.objects.filter(current_price__lt=amount, closed=False, pk=lot_id).aupdate(\n"
                   "    current_price=amount)\n"
                   "if changed == 0:\n"
                   "    return await outbid(lot_id=lot_id)\n"
                   "bid = Bid(lot_id=lot_id, bidder=bidder, amount=amount)\n"
                   "await bid.asave()\n"
                   "await announce_bid.aenqueue(bid_id=bid.pk)\n"
                   "return accepted(bid=bid)"),
    ],
}
