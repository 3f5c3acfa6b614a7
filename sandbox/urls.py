"""URLs of the sandbox: one include per app."""

from django.urls import include, path

urlpatterns = [
    path("", include("sandbox.concurrency.urls")),
    path("catalog/", include("sandbox.catalog.urls")),
]
