"""URLs of chapter 07's app, under /tasks/."""

from django.urls import path

from sandbox.tasks_lab import views

urlpatterns = [
    path("fire-and-forget/", views.fire_and_forget),
]
