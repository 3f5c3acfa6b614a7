from django.urls import path

from sandbox.concurrency import views

urlpatterns = [
    path("wait/async/", views.wait_async),
    path("wait/sync/", views.wait_sync),
    path("wait/blocking/", views.blocking_async),
    path("fanout/async/", views.fanout_async),
    path("fanout/sync/", views.fanout_sync),
    path("cpu/async/", views.cpu_async),
    path("cpu/sync/", views.cpu_sync),
    path("stream/", views.stream),
    path("broadcast/", views.broadcast),
    path("whoami/", views.whoami),
]
