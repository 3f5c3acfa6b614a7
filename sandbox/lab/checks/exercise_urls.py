"""A URLconf with one route, /exercise/, served by whatever view a check puts there."""

from django.urls import clear_url_caches, path

urlpatterns = []


def serve(view) -> None:
    urlpatterns[:] = [path("exercise/", view)]
    clear_url_caches()
