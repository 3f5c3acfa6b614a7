"""URLs of chapter 06's chat, under /chat/. Its WebSocket route is in `sandbox/routing.py`."""

from django.urls import path

from sandbox.chat import views

urlpatterns = [
    path("", views.index),
    path("login/", views.login, name="chat-login"),
    path("<slug:room>/", views.room, name="chat-room"),
    path("<slug:room>/history/", views.room_history),
    path("<slug:room>/who/", views.room_who),
]
