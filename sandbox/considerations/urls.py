"""URLs of chapter 08's app, under /considerations/."""

from django.urls import path

from sandbox.considerations import views

urlpatterns = [
    path("db/", views.db_wait),
    path("db/sync/", views.db_wait_sync),
    path("gc/", views.collect_garbage),
    path("visit/unsafe/<slug:page>/", views.visit_unsafe),
    path("visit/locked/<slug:page>/", views.visit_locked),
    path("visit/sync/<slug:page>/", views.visit_sync_unsafe),
    path("visit/db/<slug:page>/", views.visit_db),
]
