"""The auction's ASGI application: Django for HTTP, the live package's consumer for WebSockets.

daphne serves it as `sandbox.capstone.asgi:application`, with DJANGO_SETTINGS_MODULE=sandbox.capstone.settings;
CAPSTONE_PACKAGE names the package whose `consumers.LotFeed` serves ws/capstone/lots/<lot_id>/.
"""

import os
from importlib import import_module

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sandbox.capstone.settings")
django_asgi_app = get_asgi_application()  # sets Django up: consumers and models are imported after it

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import path  # noqa: E402

PACKAGE = getattr(settings, "CAPSTONE_PACKAGE", "sandbox.capstone.reference")  # the kernel's settings name none
consumers = import_module(f"{PACKAGE}.consumers")

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            URLRouter([path("ws/capstone/lots/<int:lot_id>/", consumers.LotFeed.as_asgi())])
        ),
    }
)
