"""URLs of the sandbox: one include per app."""

from django.urls import include, path

urlpatterns = [
    path("", include("sandbox.concurrency.urls")),
    path("catalog/", include("sandbox.catalog.urls")),
    path("views/", include("sandbox.asyncviews.urls")),
    path("library/", include("sandbox.library.urls")),
    path("mw/", include("sandbox.middleware_lab.urls")),
    path("chat/", include("sandbox.chat.urls")),
    path("tasks/", include("sandbox.tasks_lab.urls")),
    path("considerations/", include("sandbox.considerations.urls")),
    path("capstone/", include("sandbox.capstone.urls")),
]
