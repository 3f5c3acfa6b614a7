"""WebSocket routes of the sandbox, collected from its apps."""

from django.urls import path

from sandbox.concurrency.consumers import HoldConsumer

websocket_urlpatterns = [
    path("ws/hold/", HoldConsumer.as_asgi()),
]
