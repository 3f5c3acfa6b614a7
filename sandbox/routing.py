"""WebSocket routes of the sandbox, collected from its apps."""

from django.urls import path

from sandbox.chat.consumers import ChatConsumer
from sandbox.chat.document import MyConsumer
from sandbox.concurrency.consumers import HoldConsumer

websocket_urlpatterns = [
    path("ws/hold/", HoldConsumer.as_asgi()),
    path("ws/chat/", MyConsumer.as_asgi()),  # the source document's consumer, as written, at the document's path
    path("ws/chat/<slug:room>/", ChatConsumer.as_asgi()),  # the chat (chapter 06): logged-in users only
]
