"""The chat's pages: a login form, the room page (HTML + a little JavaScript), and two JSON views."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.http import JsonResponse
from django.shortcuts import redirect, render

from sandbox.chat.consumers import MAX_TEXT, history, who_is_here

LOGIN_URL = "/chat/login/"

login = LoginView.as_view(template_name="chat/login.html")


async def index(request):
    return redirect("chat-room", room="lobby")


@login_required(login_url=LOGIN_URL)  # async-capable since Django 5.1: it awaits request.auser()
async def room(request, room: str):
    """The chat page. The template gets the username, never `request.user`: that lazy object would run its
    query while the template renders, on the event loop's thread (SynchronousOnlyOperation)."""
    user = await request.auser()
    return render(request, "chat/room.html", {"room": room, "username": user.username, "max_text": MAX_TEXT})


async def room_history(request, room: str):
    return JsonResponse({"room": room, "messages": await history(room)})


async def room_who(request, room: str):
    return JsonResponse({"room": room, "who": await who_is_here(room)})
