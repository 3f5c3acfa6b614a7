"""The chat's two tables: the messages of each room, and who is connected to it right now."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Message(models.Model):
    """One chat message. The history a newcomer sees is the room's last `HISTORY` messages."""

    room = models.CharField(max_length=50, db_index=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_messages")
    text = models.TextField()
    sent = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["sent", "id"]

    def __str__(self) -> str:
        return f"{self.room}: {self.text[:40]}"


class Presence(models.Model):
    """One open WebSocket in a room: a row per connection, so two tabs of one user are two rows.

    Kept in the database, not in a dict in the consumer's process: every daphne process behind a load balancer
    sees the same rows, so "who is here" is right whichever process a client is connected to.
    """

    room = models.CharField(max_length=50, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_presence")
    channel_name = models.CharField(max_length=200, unique=True)
    pid = models.IntegerField()  # the server process holding the connection
    since = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.user_id} in {self.room} ({self.channel_name})"
