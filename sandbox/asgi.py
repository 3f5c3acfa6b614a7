"""ASGI entry point: Django for HTTP, Channels for WebSockets.

Run it with `python -m daphne sandbox.asgi:application` or `python -m uvicorn sandbox.asgi:application`.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sandbox.settings")
# Django must be set up before consumers (and the models they import) are imported.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: I001
from channels.security.websocket import AllowedHostsOriginValidator

from sandbox.routing import websocket_urlpatterns

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Refuses a WebSocket whose Origin header is missing or not in ALLOWED_HOSTS.
        "websocket": AllowedHostsOriginValidator(URLRouter(websocket_urlpatterns)),
    }
)
