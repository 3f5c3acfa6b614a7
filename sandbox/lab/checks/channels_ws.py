"""Checks for the exercises of chapter 06, Channels and WebSockets.

Each check drives the learner's consumer (or application) with Channels' `WebsocketCommunicator`, in this
kernel, with the real ORM, a fresh in-memory channel layer, and real session cookies. It reads what the consumer
really sent, in order (an accept, a message, a close), what it raised, which coroutines were never awaited, and
whether the event loop stalled, and names the async mistake from that, never from the source text.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import re
import time
import uuid
import warnings
from dataclasses import dataclass, field

from sandbox.lab.checks.common import BLOCKED, ExerciseFailed, not_attempted, passed, watch_loop

ORIGIN = "http://127.0.0.1"
IN_MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
COLOURS = ["amber", "blue", "coral", "green", "violet"]


# --- the profile service of exercise 1 ---------------------------------------------------------------------------

@dataclass
class _Service:
    in_flight: int = 0
    max_in_flight: int = 0
    calls: int = 0

    def start(self) -> None:
        self.calls += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)


profiles = _Service()


def _profile(name: str) -> dict:
    return {"name": name, "colour": COLOURS[sum(map(ord, name)) % len(COLOURS)]}


async def fetch_profile(name: str) -> dict:
    """The profile service's async client: an answer after 0.5 s, without blocking the event loop."""
    profiles.start()
    try:
        await asyncio.sleep(0.5)
        return _profile(name)
    finally:
        profiles.in_flight -= 1


def fetch_profile_sync(name: str) -> dict:
    """The same service's sync client: it blocks its thread for 0.5 s."""
    profiles.start()
    try:
        time.sleep(0.5)
        return _profile(name)
    finally:
        profiles.in_flight -= 1


# --- driving a consumer ------------------------------------------------------------------------------------------

@dataclass
class Conversation:
    """What one connection saw: the ASGI messages the application sent, and what it raised."""

    outputs: list[dict] = field(default_factory=list)
    error: BaseException | None = None
    timed_out: bool = False

    @property
    def kinds(self) -> list[str]:
        return [m["type"] for m in self.outputs]

    @property
    def accepted(self) -> bool:
        return bool(self.outputs) and self.outputs[0]["type"] == "websocket.accept"

    def texts(self) -> list[str]:
        return [m.get("text") for m in self.outputs if m["type"] == "websocket.send"]


async def _next(comm, conv: Conversation, timeout: float) -> dict | None:
    """The application's next ASGI message, or None (recorded) when it raised, ended, or sent nothing in time.

    Unlike `receive_output`, which waits out its whole timeout when the application has already failed, this
    returns as soon as either happens.
    """
    get = asyncio.ensure_future(comm.output_queue.get())
    done, _ = await asyncio.wait({get, comm.future}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    if get in done:
        conv.outputs.append(get.result())
        return conv.outputs[-1]
    get.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await get
    if comm.future in done:
        if not comm.future.cancelled() and comm.future.exception() is not None:
            conv.error = comm.future.exception()
    else:
        conv.timed_out = True
    return None


async def _open(comm, conv: Conversation, timeout: float = 3.0) -> dict | None:
    await comm.send_input({"type": "websocket.connect"})
    return await _next(comm, conv, timeout)


async def _close(comm) -> None:
    with contextlib.suppress(BaseException):
        await comm.send_input({"type": "websocket.disconnect", "code": 1000})
        await comm.wait(1)
    with contextlib.suppress(BaseException):
        comm.stop(exceptions=False)


@contextlib.contextmanager
def _never_awaited():
    """Collect the names of coroutines that were created and dropped without an `await`."""
    names: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield names
        finally:
            gc.collect()
            for w in caught:
                match = re.search(r"coroutine '([^']+)' was never awaited", str(w.message))
                if match:
                    names.append(match.group(1))


@contextlib.contextmanager
def _fresh_layer():
    """A private in-memory channel layer for the check (Channels rebuilds its layers when the setting changes)."""
    from django.test import override_settings

    with override_settings(CHANNEL_LAYERS=IN_MEMORY):
        yield


def _fail_on_error(ex: str, conv: Conversation, what: str) -> None:
    """Turn an exception the consumer raised into feedback."""
    exc = conv.error
    if exc is None:
        return
    from django.core.exceptions import SynchronousOnlyOperation

    if isinstance(exc, NotImplementedError):
        raise not_attempted(ex) from None
    if isinstance(exc, SynchronousOnlyOperation):
        from sandbox.lab.checks.async_orm import explain_sync_only

        raise ExerciseFailed(ex, f"{what} raised {explain_sync_only(exc)}")
    text = f"{type(exc).__name__}: {exc}"
    if "coroutine" in str(exc):
        raise ExerciseFailed(ex, f"{what} raised {text}. A coroutine was used as a value: a missing `await` "
                                 "(calling an async function only creates the coroutine; nothing runs)")
    raise ExerciseFailed(ex, f"{what} raised {text}")


def _fail_never_awaited(ex: str, names: list[str]) -> None:
    if names:
        shown = ", ".join(sorted(set(names)))
        raise ExerciseFailed(ex, f"a coroutine that was never awaited: {shown}. Calling an async method such as "
                                 "self.accept(), self.send_json() or channel_layer.group_send() only creates a "
                                 "coroutine; put `await` in front of it, or nothing is sent")


def _require_consumer(ex: str, consumer, name: str) -> None:
    if not (isinstance(consumer, type) and hasattr(consumer, "as_asgi")):
        raise ExerciseFailed(ex, f"{name} should be a consumer class (a subclass of AsyncJsonWebsocketConsumer), "
                                 f"got {consumer!r}")


async def _cookie(username: str) -> str:
    from sandbox.chat.clients import login_cookie

    return await login_cookie(username)


def _headers(cookie: str | None = None, origin: str | None = ORIGIN) -> list[tuple[bytes, bytes]]:
    from sandbox.chat.clients import scope_headers

    return scope_headers(cookie, origin)


# --- exercise 1: accept, look up, greet --------------------------------------------------------------------------

async def greet_on_connect(GreetConsumer, n: int = 5) -> None:  # noqa: N803 - a class, named like one
    """Exercise 'greet-on-connect': accept, await the profile lookup, greet; n connections at once."""
    ex = "greet-on-connect"
    _require_consumer(ex, GreetConsumer, "GreetConsumer")
    from channels.routing import URLRouter
    from channels.testing import WebsocketCommunicator
    from django.urls import path

    app = URLRouter([path("ws/greet/<str:name>/", GreetConsumer.as_asgi())])
    names = [f"guest{i}" for i in range(n)]
    comms = [WebsocketCommunicator(app, f"/ws/greet/{name}/") for name in names]
    convs = [Conversation() for _ in names]
    profiles.max_in_flight = profiles.calls = 0

    async def talk(comm, conv):
        if (first := await _open(comm, conv, 5.0)) and first["type"] == "websocket.accept":
            await _next(comm, conv, 5.0)

    with _fresh_layer(), _never_awaited() as dropped:
        try:
            start = time.perf_counter()
            async with watch_loop() as watch, asyncio.timeout(30):
                await asyncio.gather(*(talk(c, v) for c, v in zip(comms, convs, strict=True)))
            elapsed = time.perf_counter() - start
        finally:
            await asyncio.gather(*(_close(c) for c in comms))
    for conv in convs:
        _fail_on_error(ex, conv, "connect()")
    _fail_never_awaited(ex, dropped)
    conv = convs[0]
    if watch.max_gap > BLOCKED:
        raise ExerciseFailed(ex, f"the event loop was blocked for {watch.max_gap:.2f} s: fetch_profile_sync (or "
                                 "time.sleep, or any sync call that waits) inside `async def connect` stops every "
                                 "other connection; await the async client, `await fetch_profile(name)`")
    if not conv.outputs:
        raise ExerciseFailed(ex, "the consumer sent nothing, not even an accept: call `await self.accept()` in "
                                 "connect(), or the handshake never completes")
    if conv.kinds[0] == "websocket.send":
        raise ExerciseFailed(ex, "the consumer sent a message before accept(): the handshake is not complete yet "
                                 "(daphne raises \"Socket has not been accepted, so cannot send over it\"); "
                                 "`await self.accept()` first")
    if conv.kinds[0] == "websocket.close":
        raise ExerciseFailed(ex, "the consumer closed (refused) the connection: accept it with "
                                 "`await self.accept()`")
    if len(conv.outputs) < 2:
        raise ExerciseFailed(ex, "the connection was accepted but no greeting came within 5 s: send it with "
                                 "`await self.send_json({...})`")
    from json import loads

    got = [loads(c.texts()[0]) if c.texts() else None for c in convs]
    want = [{"hello": name, "colour": _profile(name)["colour"]} for name in names]
    if got != want:
        raise ExerciseFailed(ex, f"the greeting should be {want[0]} for guest0 (the colour comes from "
                                 f"fetch_profile), got {got[0]}")
    if profiles.max_in_flight < n:
        raise ExerciseFailed(ex, f"the {n} lookups did not overlap (at most {profiles.max_in_flight} at once): "
                                 "something serialised the connections")
    passed(ex, f"{n} connections accepted and greeted in {elapsed:.2f} s, their {n} lookups of 0.5 s all in "
               f"flight at once; the loop never stalled")


# --- exercise 2: the ORM in receive_json -------------------------------------------------------------------------

async def save_message(SaveConsumer) -> None:  # noqa: N803
    """Exercise 'save-message': save each message with the ORM from an async consumer, reply id and count."""
    ex = "save-message"
    _require_consumer(ex, SaveConsumer, "SaveConsumer")
    from channels.auth import AuthMiddlewareStack
    from channels.routing import URLRouter
    from channels.testing import WebsocketCommunicator
    from django.urls import path

    from sandbox.chat.models import Message

    room = f"exercise-{uuid.uuid4().hex[:8]}"
    username = "exercise-writer"
    app = AuthMiddlewareStack(URLRouter([path("ws/save/<slug:room>/", SaveConsumer.as_asgi())]))
    comm = WebsocketCommunicator(app, f"/ws/save/{room}/", headers=_headers(await _cookie(username)))
    conv = Conversation()
    replies = []
    try:
        with _fresh_layer(), _never_awaited() as dropped:
            try:
                first = await _open(comm, conv)
                if first and first["type"] == "websocket.accept":
                    for text in ("first", "second"):
                        await comm.send_input({"type": "websocket.receive", "text": f'{{"text": "{text}"}}'})
                        reply = await _next(comm, conv, 5.0)
                        if reply is None:
                            break
                        replies.append(reply)
            finally:
                await _close(comm)
        _fail_on_error(ex, conv, "receive_json()")
        _fail_never_awaited(ex, dropped)
        if len(replies) < 2:
            raise ExerciseFailed(ex, "no reply came within 5 s of a message: send it with "
                                     '`await self.send_json({"saved": ..., "count": ...})`')
        from json import loads

        bodies = [loads(r.get("text") or "null") for r in replies]
        rows = [m async for m in Message.objects.filter(room=room).select_related("author").order_by("id")]
        if [(m.text, m.author.username) for m in rows] != [("first", username), ("second", username)]:
            raise ExerciseFailed(ex, f"the room should hold the two messages by {username}, saved in the order "
                                     f"they came; it holds {[(m.text, m.author.username) for m in rows]}")
        want = [{"saved": rows[0].id, "count": 1}, {"saved": rows[1].id, "count": 2}]
        if bodies != want:
            raise ExerciseFailed(ex, f"the replies should be {want}, got {bodies}")
    finally:
        await Message.objects.filter(room=room).adelete()
    passed(ex, "two messages saved with the author from scope['user'], ids and counts sent back, and no sync "
               "ORM call on the event loop's thread")


# --- exercise 3: a group broadcast -------------------------------------------------------------------------------

async def room_broadcast(RoomConsumer) -> None:  # noqa: N803
    """Exercise 'room-broadcast': one message reaches everyone in the room (the sender too), and nobody else."""
    ex = "room-broadcast"
    _require_consumer(ex, RoomConsumer, "RoomConsumer")
    from channels.routing import URLRouter
    from channels.testing import WebsocketCommunicator
    from django.urls import path

    app = URLRouter([path("ws/room/<slug:room>/", RoomConsumer.as_asgi())])
    rooms = ["kitchen"] * 3 + ["cellar"]
    comms = [WebsocketCommunicator(app, f"/ws/room/{room}/") for room in rooms]
    convs = [Conversation() for _ in rooms]
    with _fresh_layer(), _never_awaited() as dropped:
        try:
            for comm, conv in zip(comms, convs, strict=True):
                first = await _open(comm, conv)
                if first is None or first["type"] != "websocket.accept":
                    _fail_on_error(ex, conv, "connect()")
                    raise ExerciseFailed(ex, f"the connection was not accepted (the consumer sent {conv.kinds})")
            await comms[0].send_input({"type": "websocket.receive", "text": '{"text": "dinner is ready"}'})
            await asyncio.gather(*(_next(c, v, 3.0) for c, v in zip(comms[:3], convs[:3], strict=True)))
            await _next(comms[3], convs[3], 0.3)  # the other room: by now a stray message would be there
        finally:
            await asyncio.gather(*(_close(c) for c in comms))
    for conv in convs:
        if isinstance(conv.error, ValueError) and "No handler for message type" in str(conv.error):
            raise ExerciseFailed(ex, f"the consumers raised ValueError: {conv.error}. An event's \"type\" names the "
                                     "handler that runs it, dots turned into underscores: \"room.message\" runs "
                                     "room_message(); no method matches this type")
        _fail_on_error(ex, conv, "the consumer")
    _fail_never_awaited(ex, dropped)
    heard = [any('"dinner is ready"' in (t or "") for t in conv.texts()) for conv in convs]
    kitchen, cellar = heard[:3], heard[3]
    if kitchen == [True, False, False]:
        raise ExerciseFailed(ex, "only the sender received the message: self.send_json answers one connection; "
                                 "send it to the room's group with `await self.channel_layer.group_send(self.group, "
                                 '{"type": "room.message", "text": ...})`')
    if cellar:
        raise ExerciseFailed(ex, "someone in another room received the message: send to this room's group, "
                                 "`self.group`")
    if not all(kitchen):
        raise ExerciseFailed(ex, f"{sum(kitchen)} of the 3 connections in the room received the message: send it "
                                 "to the group the consumer joined in connect(), `self.group`")
    passed(ex, "one group_send reached all 3 connections in the room, the sender too, and none in the other room")


# --- exercise 4: members only ------------------------------------------------------------------------------------

async def members_only(MembersOnlyConsumer) -> None:  # noqa: N803
    """Exercise 'members-only': refuse an anonymous user before the handshake; accept and greet a member."""
    ex = "members-only"
    _require_consumer(ex, MembersOnlyConsumer, "MembersOnlyConsumer")
    from channels.auth import AuthMiddlewareStack
    from channels.routing import URLRouter
    from channels.security.websocket import AllowedHostsOriginValidator
    from channels.testing import WebsocketCommunicator
    from django.urls import path

    app = AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter([
        path("ws/members/", MembersOnlyConsumer.as_asgi())])))
    username = "exercise-member"
    member = WebsocketCommunicator(app, "/ws/members/", headers=_headers(await _cookie(username)))
    stranger = WebsocketCommunicator(app, "/ws/members/", headers=_headers())
    as_member, as_stranger = Conversation(), Conversation()
    with _fresh_layer(), _never_awaited() as dropped:
        try:
            for comm, conv in ((member, as_member), (stranger, as_stranger)):
                first = await _open(comm, conv)
                if first is not None and first["type"] == "websocket.accept":
                    await _next(comm, conv, 3.0)  # the greeting
                if first is not None:
                    while await _next(comm, conv, 0.3) is not None:  # anything else it sends
                        pass
        finally:
            await _close(member)
            await _close(stranger)
    for conv, who in ((as_member, "for a logged-in user"), (as_stranger, "for an anonymous user")):
        if isinstance(conv.error, TypeError) and "is not callable" in str(conv.error):
            raise ExerciseFailed(ex, f"connect() raised {type(conv.error).__name__}: {conv.error}. "
                                     "`user.is_authenticated` is a property (a bool), not a method: no ()")
        _fail_on_error(ex, conv, f"connect() {who}")
    _fail_never_awaited(ex, dropped)
    if as_stranger.accepted and "websocket.close" in as_stranger.kinds:
        raise ExerciseFailed(ex, "the anonymous user's handshake was accepted, then closed: by then the socket "
                                 "is open. Refuse before accept(): check `user.is_authenticated` first, then "
                                 "`await self.close(...)` and return")
    if as_stranger.accepted:
        raise ExerciseFailed(ex, "an anonymous user was accepted: AuthMiddlewareStack puts an AnonymousUser in "
                                 "scope['user'] (an object, so `if user:` is always true); test "
                                 "`user.is_authenticated`")
    if not as_stranger.outputs or as_stranger.kinds[0] != "websocket.close":
        raise ExerciseFailed(ex, "an anonymous user got no answer: refuse the handshake with "
                                 "`await self.close(code=4401)`")
    if len(as_stranger.outputs) > 1:
        raise ExerciseFailed(ex, f"after refusing the anonymous user, connect() kept going (it also sent "
                                 f"{as_stranger.kinds[1:]}): `return` right after `await self.close(...)`")
    if not as_member.accepted:
        raise ExerciseFailed(ex, f"a logged-in user was not accepted (the consumer sent {as_member.kinds})")
    from json import loads

    greeting = [loads(t) for t in as_member.texts()]
    if greeting != [{"hello": username}]:
        raise ExerciseFailed(ex, f'greet the member with {{"hello": user.username}}, got {greeting}')
    passed(ex, f"the anonymous handshake was refused (close code {as_stranger.outputs[0].get('code')}) before "
               f"accept(); {username} was accepted and greeted")


# --- exercise 5: a production asgi.py ----------------------------------------------------------------------------

async def production_stack(production_application) -> None:
    """Exercise 'production-stack': pages work; WebSockets only from the site itself, with the session user."""
    ex = "production-stack"
    if not callable(production_application):
        raise ExerciseFailed(ex, f"production_application should be a function, got {production_application!r}")
    import httpx
    from channels.generic.websocket import AsyncJsonWebsocketConsumer
    from channels.testing import WebsocketCommunicator
    from django.urls import path

    class WhoAmI(AsyncJsonWebsocketConsumer):
        async def connect(self):
            await self.accept()
            user = self.scope.get("user")
            await self.send_json({"user": getattr(user, "username", None), "has_user": user is not None})

    try:
        app = production_application([path("ws/whoami/", WhoAmI.as_asgi())])
    except NotImplementedError:
        raise not_attempted(ex) from None
    if app is None:
        raise ExerciseFailed(ex, "production_application returned None: return the application")
    try:
        async with asyncio.timeout(10), httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                                          base_url="http://127.0.0.1") as http:
            page = await http.get("/chat/login/")
    except ValueError as exc:
        if "No application configured for scope type 'http'" in str(exc):
            raise ExerciseFailed(ex, "an HTTP request raised ValueError: No application configured for scope type "
                                     "'http'. With no 'http' route every page of the site answers 500: route "
                                     '"http" to `django_asgi_app`') from None
        raise ExerciseFailed(ex, f"an HTTP request raised {type(exc).__name__}: {exc}") from None
    if page.status_code != 200:
        raise ExerciseFailed(ex, f"GET /chat/login/ answered HTTP {page.status_code}, expected 200 from Django")

    username = "exercise-visitor"
    cookie = await _cookie(username)
    results = {}
    with _fresh_layer():
        for label, headers in (("site", _headers(cookie)), ("foreign", _headers(cookie, "http://evil.example")),
                               ("no origin", _headers(cookie, None))):
            comm, conv = WebsocketCommunicator(app, "/ws/whoami/", headers=headers), Conversation()
            try:
                if await _open(comm, conv) is not None and conv.accepted:
                    await _next(comm, conv, 2.0)
            finally:
                await _close(comm)
            _fail_on_error(ex, conv, f"a WebSocket ({label})")
            results[label] = conv
    if results["foreign"].accepted or results["no origin"].accepted:
        which = "from http://evil.example" if results["foreign"].accepted else "without an Origin header"
        raise ExerciseFailed(ex, f"a WebSocket {which} was accepted: a page the site never served could open it, "
                                 "and the browser sends your user's cookies with it wherever their SameSite rules "
                                 "allow (cross-site WebSocket hijacking). Wrap the WebSocket routes in "
                                 "AllowedHostsOriginValidator")
    site = results["site"]
    if not site.accepted:
        raise ExerciseFailed(ex, f"a WebSocket from the site itself was refused (the application sent "
                                 f"{site.kinds}): is the URLRouter inside the stack?")
    from json import loads

    body = loads(site.texts()[0]) if site.texts() else {}
    if not body.get("has_user"):
        raise ExerciseFailed(ex, "the consumer found no scope['user']: wrap the routes in AuthMiddlewareStack, "
                                 "which reads the session cookie and sets the user")
    if body.get("user") != username:
        raise ExerciseFailed(ex, f"scope['user'] should be {username} (the session cookie's user), got "
                                 f"{body.get('user')!r}")
    passed(ex, f"pages answer 200; a WebSocket from the site itself is accepted as {username}; from another site "
               "or without an Origin it is refused")
