"""A Channels consumer that holds a WebSocket open: the connection-count demo of chapter 01."""

from __future__ import annotations

import json
import os
import threading

from channels.generic.websocket import AsyncWebsocketConsumer


class HoldConsumer(AsyncWebsocketConsumer):
    """Accepts, joins the `hold` group, and waits. An idle connection costs a coroutine, not a thread."""

    group = "hold"

    async def connect(self):
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send(json.dumps({"hello": True, "pid": os.getpid(), "thread": threading.current_thread().name}))

    async def disconnect(self, code):
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        await self.send(json.dumps({"echo": text_data}))

    async def hold_message(self, event):
        """Handler for `group_send(..., {"type": "hold.message"})`."""
        await self.send(json.dumps({"broadcast": event["text"], "pid": os.getpid()}))
