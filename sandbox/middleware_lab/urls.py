"""URLs of chapter 05's app, under /mw/."""

from django.urls import path

from sandbox.middleware_lab import views

urlpatterns = [
    path("trail/", views.trail),
    path("trail-sync/", views.trail_sync),
]
