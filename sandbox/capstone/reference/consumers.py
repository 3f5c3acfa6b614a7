"""The auction's live feed: one WebSocket per page watching a lot."""

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from sandbox.capstone.auction import NO_SUCH_LOT, group_name, price_message
from sandbox.capstone.models import Lot


class LotFeed(AsyncJsonWebsocketConsumer):
    """Mounted at ws/capstone/lots/<lot_id>/: the lot's price first, then every accepted bid as it happens."""

    async def connect(self):
        self.lot_id = self.scope["url_route"]["kwargs"]["lot_id"]
        self.group = group_name(self.lot_id)
        lot = await Lot.objects.filter(pk=self.lot_id).afirst()
        if lot is None:
            await self.close(code=NO_SUCH_LOT)  # before accept(): the handshake is refused
            return
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json(price_message(lot))

    async def disconnect(self, code):
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def bid_placed(self, event):
        """The handler for group messages of type "bid.placed": pass them on to the browser."""
        await self.send_json(event)
