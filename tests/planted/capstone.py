"""Planted wrong answers for chapter 09, the capstone (a live auction)."""

from tests.planted.common import Planted

CHAPTER = "09-capstone"

_LOT = ("lot = await Lot.objects.filter(pk=self.lot_id).afirst()\n"
        "if lot is None:\n"
        "    await self.close(code=NO_SUCH_LOT)\n"
        "    return\n")
_CHECK = ("async with fraud_check_client() as client:\n"
          "    check = await client.get(fraud_check_url(bidder, amount))\n"
          "check.raise_for_status()\n")
_RAISE = ("raised = await Lot.objects.filter(pk=lot_id, closed=False, current_price__lt=amount).aupdate(\n"
          "    current_price=amount)\n"
          "if not raised:\n"
          "    return await outbid(lot_id)\n")
_SAVE = "bid = await Bid.objects.acreate(lot_id=lot_id, bidder=bidder, amount=amount)\n"

PLANTED: dict[str, list[Planted]] = {
    "lot-feed": [
        Planted("never joins the lot's group",
                _LOT + "await self.accept()\nawait self.send_json(price_message(lot))",
                "never joined the group"),
        Planted("forgets to await group_add",
                _LOT + "self.channel_layer.group_add(self.group, self.channel_name)\n"
                       "await self.accept()\nawait self.send_json(price_message(lot))",
                "never awaited"),
        Planted("reads the lot with the sync ORM in connect()",
                "lot = Lot.objects.filter(pk=self.lot_id).first()\n"
                "await self.channel_layer.group_add(self.group, self.channel_name)\n"
                "await self.accept()\nawait self.send_json(price_message(lot))",
                "event loop's thread"),
    ],
    "announce-bid": [
        Planted("reads the bid with the sync ORM inside the async task",
                "bid = Bid.objects.select_related(\"lot\").get(pk=bid_id)\n"
                "event = bid_event(bid)\n"
                "await get_channel_layer().group_send(group_name(bid.lot_id), event)\n"
                "return event",
                "event loop's thread"),
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
        Planted("wraps group_send in async_to_sync inside the async task",
                "from asgiref.sync import async_to_sync\n\n"
                "bid = await Bid.objects.select_related(\"lot\").aget(pk=bid_id)\n"
                "event = bid_event(bid)\n"
                "async_to_sync(get_channel_layer().group_send)(group_name(bid.lot_id), event)\n"
                "return event",
                "async_to_sync inside an async function"),
    ],
    "place-bid": [
        Planted("calls the fraud check with a sync HTTP call (httpx.get) in the async view",
                "import httpx\n\n"
                "check = httpx.get(fraud_check_url(bidder, amount), timeout=5)\n"
                "check.raise_for_status()\n" + _RAISE + _SAVE +
                "await announce_bid.aenqueue(bid.pk)\nreturn accepted(bid)",
                "ran one at a time"),
        Planted("raises the price with a read-modify-write (read, compare in Python, save)",
                _CHECK +
                "lot = await Lot.objects.aget(pk=lot_id)\n"
                "if lot.closed or amount <= lot.current_price:\n"
                "    return await outbid(lot_id)\n"
                "lot.current_price = amount\n"
                "await lot.asave()\n" + _SAVE +
                "await announce_bid.aenqueue(bid.pk)\nreturn accepted(bid)",
                "lost updates"),
        Planted("updates the price with the sync ORM in the async view",
                _CHECK +
                "raised = Lot.objects.filter(pk=lot_id, closed=False, current_price__lt=amount).update(\n"
                "    current_price=amount)\n"
                "if not raised:\n"
                "    return await outbid(lot_id)\n" + _SAVE +
                "await announce_bid.aenqueue(bid.pk)\nreturn accepted(bid)",
                "event loop's thread"),
        Planted("forgets to await aenqueue",
                _CHECK + _RAISE + _SAVE + "announce_bid.aenqueue(bid.pk)\nreturn accepted(bid)",
                "never awaited"),
        Planted("enqueues with the sync enqueue() in the async view",
                _CHECK + _RAISE + _SAVE + "announce_bid.enqueue(bid.pk)\nreturn accepted(bid)",
                "sync `enqueue()`"),
    ],
}
