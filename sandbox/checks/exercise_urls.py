"""A URLconf whose routes are whatever views a check puts there (see `harness.serving`)."""

from __future__ import annotations

from django.urls import clear_url_caches, path

urlpatterns = []


def serve(view_or_routes) -> None:
    """Route /exercise/ to a view, or each "route/" of a {route: view} dict to its view."""
    routes = view_or_routes if isinstance(view_or_routes, dict) else {"exercise/": view_or_routes}
    urlpatterns[:] = [path(route, view) for route, view in routes.items()]
    clear_url_caches()
