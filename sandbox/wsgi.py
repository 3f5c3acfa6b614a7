"""WSGI entry point, for the threaded baseline: `gunicorn -k gthread --threads N sandbox.wsgi`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sandbox.settings")
application = get_wsgi_application()
