"""A small WebSocket consumer for the testing part of chapter 08: it answers every message in capitals."""

from __future__ import annotations

from channels.generic.websocket import AsyncWebsocketConsumer


class ShoutConsumer(AsyncWebsocketConsumer):
    """Accepts, then answers each text message in upper case."""

    async def connect(self):
        await self.accept()

    async def receive(self, text_data=None, bytes_data=None):
        await self.send(text_data=(text_data or "").upper())
