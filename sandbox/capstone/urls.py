"""URLs of chapter 09's app, under /capstone/: a lot's state, placing a bid, and the naive bid of the lesson.

`place_bid` comes from the live package that settings.CAPSTONE_PACKAGE names (the shared settings name none:
the course's reference implementation). A learner's package without its views.py yet gets a placeholder.
"""

from importlib import import_module

from django.conf import settings
from django.http import JsonResponse
from django.urls import path

from sandbox.capstone import views

PACKAGE = getattr(settings, "CAPSTONE_PACKAGE", "sandbox.capstone.reference")


async def not_written_yet(request, lot_id: int):
    return JsonResponse({"error": f"{PACKAGE}/views.py is not written yet"}, status=501)


try:
    place_bid = import_module(f"{PACKAGE}.views").place_bid
except ModuleNotFoundError as exc:
    if exc.name != f"{PACKAGE}.views":
        raise
    place_bid = not_written_yet

urlpatterns = [
    path("lots/<int:lot_id>/", views.lot_detail),
    path("lots/<int:lot_id>/bid/", place_bid),
    path("lots/<int:lot_id>/bid-naive/", views.place_bid_naive),
]
