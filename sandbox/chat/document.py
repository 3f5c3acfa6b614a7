"""The source document's consumer and routing, verbatim (section "Django Channels for Real-time Features").

The two snippets are kept exactly as the document prints them, one after the other, so that chapter 06 can run
them as written: `application` below is the document's whole `asgi.py` routing. What a production `asgi.py`
adds to it is in `sandbox/asgi.py`.
"""
# ruff: noqa: E402, I001  (the document's imports, in the document's order)

# --- "Defining an Async Consumer:" -------------------------------------------------------------------------
from channels.generic.websocket import AsyncWebsocketConsumer
import json

class MyConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        await self.accept()
        await self.send(json.dumps({"message": "Connected!"}))

# --- "Routing in `asgi.py`:" --------------------------------------------------------------------------------
from channels.routing import ProtocolTypeRouter, URLRouter
from django.urls import path

application = ProtocolTypeRouter({
    "websocket": URLRouter([
        path("ws/chat/", MyConsumer.as_asgi()),
    ])
})
