"""ASGI entry point: Django for HTTP, Channels for WebSockets. What a production `asgi.py` looks like.

Run it with `python -m daphne sandbox.asgi:application` or `python -m uvicorn sandbox.asgi:application`.
Compared with the source document's routing (`sandbox/chat/document.py`) it adds three things:
an "http" route, so the same server still serves Django's pages; an Origin check; and the session user.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sandbox.settings")
# Django must be set up before consumers (and the models they import) are imported.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: I001
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator

from sandbox.routing import websocket_urlpatterns

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Refuses a WebSocket whose Origin header is missing or not in ALLOWED_HOSTS: a page on another site
        # cannot open a socket that rides on your user's session cookie.
        "websocket": AllowedHostsOriginValidator(
            # Cookies -> session -> scope["user"], the way Django's middleware sets request.user.
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
