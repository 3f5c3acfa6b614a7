"""The chat's consumer: one WebSocket per open chat page, for logged-in users only.

What it does, handler by handler:
- `connect`: refuses anonymous users before the handshake; joins the room's group; records the connection in
  the `Presence` table; sends the newcomer the room's history and who is here; tells the room when a user
  arrives (their first open tab, not every tab).
- `receive`: refuses a frame larger than `MAX_FRAME` (close code 1009) before decoding it, and answers a frame
  that is not JSON; `receive_json` checks the text, saves it with the async ORM and broadcasts it to the room.
- `chat_message` / `presence`: the group handlers, one per event type sent with `group_send`.
- `disconnect`: leaves the group, deletes the presence row, tells the room when a user's last tab closes.

Database work never runs on the event loop's thread. One query is one async ORM call (`acreate`, `async for`);
the presence bookkeeping, several queries that must not interleave with another connection's, is one sync
function in one transaction, run in a worker thread by `database_sync_to_async` (one thread hop, not one per
query; and `transaction.atomic` does not work in async code).
"""

from __future__ import annotations

import os

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.db import transaction

from sandbox.chat.models import Message, Presence

HISTORY = 50  # messages a newcomer receives
MAX_TEXT = 2_000  # characters in one chat message: an app-level limit, checked after decoding
MAX_FRAME = 8_192  # characters in one WebSocket text frame, checked before decoding (daphne's own limit is 1 MiB)
NOT_LOGGED_IN = 4401  # close code for an anonymous user (4000-4999 are free for applications)
TOO_BIG = 1009  # the WebSocket protocol's "message too big"


def group_for(room: str) -> str:
    """The room's group. Group names may hold only ASCII letters, digits, hyphens, underscores and periods."""
    return f"chat.{room}"


def _who(room: str) -> list[str]:
    """Usernames with at least one open connection to the room, from the database (so: from every process)."""
    return sorted(Presence.objects.filter(room=room).values_list("user__username", flat=True).distinct())


who_is_here = database_sync_to_async(_who)  # the same query, awaitable: for views and the notebook


@database_sync_to_async
def join(room: str, user, channel_name: str) -> tuple[bool, list[str]]:
    """Record one connection. Returns (is this the user's first open connection to the room?, who is here)."""
    with transaction.atomic():
        first = not Presence.objects.filter(room=room, user=user).exists()
        Presence.objects.create(room=room, user=user, channel_name=channel_name, pid=os.getpid())
    return first, _who(room)


@database_sync_to_async
def leave(room: str, user, channel_name: str) -> tuple[bool, list[str]]:
    """Forget one connection. Returns (was it the user's last one in the room?, who is still here if it was:
    only then does the room hear of it)."""
    with transaction.atomic():
        Presence.objects.filter(channel_name=channel_name).delete()
        last = not Presence.objects.filter(room=room, user=user).exists()
    return last, _who(room) if last else []


async def history(room: str, limit: int = HISTORY) -> list[dict]:
    """The room's last `limit` messages, oldest first. `select_related`: reading `author` must not query."""
    latest = Message.objects.filter(room=room).select_related("author").order_by("-sent", "-id")[:limit]
    return [as_event(m) async for m in latest][::-1]


def as_event(message: Message) -> dict:
    return {"id": message.id, "author": message.author.username, "text": message.text,
            "sent": message.sent.isoformat()}


class ChatConsumer(AsyncJsonWebsocketConsumer):
    """Mounted at ws/chat/<room>/ behind AuthMiddlewareStack (which sets scope["user"])."""

    async def connect(self):
        self.user = self.scope["user"]
        if not self.user.is_authenticated:
            await self.close(code=NOT_LOGGED_IN)  # before accept(): the handshake is refused (HTTP 403)
            return
        self.room = self.scope["url_route"]["kwargs"]["room"]
        self.group = group_for(self.room)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        first_tab, who = await join(self.room, self.user, self.channel_name)
        await self.send_json({"type": "welcome", "you": self.user.username, "room": self.room, "who": who,
                              "history": await history(self.room), "pid": os.getpid()})
        if first_tab:
            await self.channel_layer.group_send(self.group, {"type": "presence", "who": who,
                                                             "joined": self.user.username})

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        """Every frame arrives here first; the JSON consumer's own `receive` would decode it straight away."""
        if bytes_data is not None or len(text_data or "") > MAX_FRAME:
            await self.close(code=TOO_BIG)  # refuse it before json.loads spends the loop's time on it
            return
        try:
            content = await self.decode_json(text_data)
        except ValueError:  # not JSON: answer, rather than let the exception close the connection (1011)
            await self.send_json({"type": "error", "error": 'send JSON: {"text": "..."}'})
            return
        await self.receive_json(content)

    async def receive_json(self, content, **kwargs):
        text = content.get("text") if isinstance(content, dict) else None
        if not isinstance(text, str) or not text.strip():
            await self.send_json({"type": "error", "error": 'send {"text": "..."} with some text'})
            return
        if len(text) > MAX_TEXT:
            await self.send_json({"type": "error", "error": f"a message holds at most {MAX_TEXT} characters"})
            return
        message = await Message.objects.acreate(room=self.room, author=self.user, text=text)
        await self.channel_layer.group_send(self.group, {"type": "chat.message", **as_event(message),
                                                         "pid": os.getpid()})

    async def chat_message(self, event):
        """Handler for group_send(..., {"type": "chat.message"}): the dot becomes an underscore."""
        await self.send_json({**event, "type": "message"})

    async def presence(self, event):
        """Handler for group_send(..., {"type": "presence"})."""
        await self.send_json(event)

    async def disconnect(self, code):
        if not hasattr(self, "group"):  # refused in connect(): nothing to undo
            return
        await self.channel_layer.group_discard(self.group, self.channel_name)
        last_tab, who = await leave(self.room, self.user, self.channel_name)
        if last_tab:
            await self.channel_layer.group_send(self.group, {"type": "presence", "who": who,
                                                             "left": self.user.username})
