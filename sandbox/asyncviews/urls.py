from django.urls import path

from sandbox.asyncviews import views

urlpatterns = [
    path("async/", views.async_view),
    path("hello/", views.AsyncHello.as_view()),
    path("items/", views.ItemList.as_view()),
    path("dashboard/sync/", views.dashboard_sync),
    path("dashboard/gather/", views.dashboard_gather),
    path("dashboard/partial/", views.dashboard_partial),
    path("dashboard/taskgroup/", views.dashboard_taskgroup),
    path("two-steps/", views.two_steps),
    path("sync-calls-async/", views.sync_calls_async),
    path("ticks/", views.ticks),
    path("ticks/sync-generator/", views.ticks_sync_generator),
    path("fresh/", views.fresh),
    path("private/", views.private),
    path("cached/", views.CachedHello.as_view()),
    path("timed/", views.timed_hello),
]
