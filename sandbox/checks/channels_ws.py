"""Checks for the exercises of chapter 06, Channels and WebSockets.

Each check drives the learner's consumer (or application) with Channels' `WebsocketCommunicator`, in this kernel,
with the real ORM, a fresh in-memory channel layer and real session cookies. It reads what the consumer really
sent, message by message and in order (an accept, a message, a close: a refused handshake is a close *instead of*
an accept), what it raised, which coroutines it never awaited and whether the event loop stalled, and names the
mistake from that, not from the source text (which is read only to say where an exception was raised). The consumer
runs as a subclass that reports when each handler has returned, on a channel layer that counts what it delivered,
so the check knows when nothing more can come instead of waiting out a timeout. Rooms, users, visitors, colours
and message texts are new on every run, so an answer that copies a value from the lesson or an earlier output
cannot pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import linecache
import random
import time
import traceback
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx
from asgiref.sync import sync_to_async
from channels.auth import AuthMiddlewareStack
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import InMemoryChannelLayer, get_channel_layer
from channels.routing import URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from channels.testing import WebsocketCommunicator
from django.core.exceptions import SynchronousOnlyOperation
from django.db import transaction
from django.db.models import Q
from django.db.models.signals import post_save
from django.test import override_settings
from django.urls import path

from sandbox.checks.common import ExerciseFailed, not_attempted, passed, watch_loop

# the chapter's givens, re-exported: the notebook calls `check.fetch_profile` and `check.fetch_profile_sync`
from sandbox.checks.givens.channels_ws import PALETTE, fetch_profile, fetch_profile_sync, profiles  # noqa: F401
from sandbox.checks.harness import (
    Requirements,
    call,
    exercise_check,
    expect_all_awaited,
    expect_not_blocked,
    is_learner_file,
    meaning,
    never_awaited,
)
from sandbox.lab.experiments.chat_clients import login_cookie, scope_headers

FIRST = 10.0  # seconds a consumer gets for its first answer (a busy machine, a thread hop per event)

REQUIREMENTS = {
    "greet-on-connect": Requirements("3e1b12bd382b", (
        ("`GreetConsumer` is mounted at `ws/greet/<name>/`",
         "five connections, each to the path of a visitor name drawn for this run"),
        ("When a connection opens, accept it",
         "the first message of each connection must be an accept: not a message before it, not a close"),
        ("look the visitor's profile up with the profile service's async client, `await fetch_profile(name)`",
         "the profile service records every lookup: one per connection, for that connection's name; the sync "
         "client on the loop shows as a stall, in a worker thread as lookups that never overlap"),
        ('greet with `{"hello": name, "colour": <the profile\'s colour>}`',
         "each connection's greeting is JSON with exactly those two keys, its own name (not another connection's) "
         "and the colour the service gave that name, drawn at random for this run"),
        ("keep the connection open",
         "once connect() has returned (the check is told), nothing more was sent: no close, no second message"),
        ("The check opens five connections at once, each for a visitor of its own: all five should be greeted after "
         "about 0.5 s, with the event loop free the whole time",
         "the service counts the lookups in flight at once: all five; a heartbeat on the loop never stalls; every "
         "coroutine is awaited"),
    )),
    "save-message": Requirements("7cc211bed695", (
        ("`self.scope[\"user\"]` is the logged-in user",
         "two users created for this run, each with a real session cookie; each message's row must name its "
         "sender as author"),
        ("For each message `{\"text\": ...}`, save a chat `Message` (fields `room`, `author`, `text`) in the "
         "consumer's room",
         "five messages with texts drawn for this run, over three connections in two fresh rooms: each must be one "
         "row, in its connection's room, with exactly its text"),
        ("then count the room's messages",
         "the rooms already hold a random number of messages: the count must include them and the new one (one "
         "short means counted before saving), and no other room's; a second connection to the room makes a "
         "per-connection tally wrong; of two messages sent at once, the later reply counts both"),
        ("The given last line sends `{\"saved\": <its id>, \"count\": <messages in the room>}`",
         "each reply's `saved` is the id of the row its message became"),
        ("The handler is `async def`: it runs on the event loop's thread, where the sync ORM refuses to run",
         "SynchronousOnlyOperation is explained with the sync ORM method that raised it; every coroutine is "
         "awaited"),
    )),
    "room-broadcast": Requirements("5e6845149c79", (
        ("send the message's text to **everyone in the room, the sender included**",
         "three connections in a room drawn for this run: each, the sender too, receives the text exactly once "
         "(not twice: the group already holds the sender)"),
        ('as an event of type `"room.message"` carrying `"text"`. The given `room_message` handler forwards it',
         "what arrives is the given handler's `{\"text\": <the text sent>}`; an event no handler takes, or one "
         "without \"text\", is named"),
        ("The check connects three clients to one room and one to another, and has the first one speak",
         "the client in the other room receives nothing; the check knows every handler has returned and every "
         "event the layer delivered was dispatched (a counting in-memory layer), so it waits for no timeout"),
        ("then clients leave and join",
         "after one member left, a client that joins gets the next message and not the earlier one"),
        ("two of them speak at the same time. Each message must reach everyone in the room once, in the order its "
         "sender sent it",
         "two members send three messages each at once: everyone in the room gets all six, each sender's in the "
         "order sent"),
    )),
    "members-only": Requirements("e8af421fed56", (
        ("Refuse an anonymous user **before** the handshake completes (close the connection instead of "
         "accepting it",
         "without a session cookie, and with an unknown one: the first message must be a close (a refused "
         "handshake) and nothing after it; accepted-then-closed and no answer at all are told apart and named"),
        ("4401 is a good application close code", "any close code is accepted (the pass message shows it)"),
        ("accept a logged-in user", "two users created for this run, connecting at the same time: both accepted"),
        ('greet them with `{"hello": <their username>}`, keeping the connection open',
         "each member's one message is exactly that JSON object with their own username, and no close follows"),
    )),
    "production-stack": Requirements("086f164e329d", (
        ("HTTP goes to Django (`django_asgi_app`, below)",
         "GET /chat/login/ through the application answers Django's page: HTTP 200, text/html"),
        ("WebSockets go to `websocket_routes` (a list of `path(...)`)",
         "the routes passed hold one consumer of the check's at a path drawn for this run: it must be reached"),
        ("accepted only from pages of this site (the `Origin` header checked against `ALLOWED_HOSTS`)",
         "from the site itself: accepted; from another site, and with no Origin header: a refused handshake"),
        ("with `scope[\"user\"]` set from the session cookie",
         "a user created for this run sends its session cookie: the consumer must see that user; without a "
         "cookie, a user that is not authenticated"),
    )),
    "announce-from-sync": Requirements("2e901ac67df9", (
        ("Write `announce(sender, instance, created, **kwargs)`, a `post_save` receiver for `Message`",
         "a plain function; the check connects it for the run, saves messages from sync code in a worker thread "
         "(as an admin action would) and once from async code (`acreate`), for a user and rooms made for the run"),
        ("a new message: the event `{\"type\": \"room.announce\", \"text\", \"author\": <username>}`",
         "a listener in the message's group receives exactly that event, with the text and username of the run"),
        ("an edited one: `{\"type\": \"room.edit\", \"id\", \"text\": <its new text>}`",
         "the message is saved again with a new text: an edit event, not a second announcement"),
        ("a message loaded from a fixture (`loaddata` saves with the signal's `raw` set): nothing",
         "a message saved with save_base(raw=True), as loaddata does, in a committed transaction: no event"),
        ("each sent to the Channels group `room-<the message's room>` through the default channel layer",
         "a listener in another room's group must receive nothing; the events arrive in the order of the saves"),
        ("and only once the message's transaction has committed: a message that is rolled back is never announced",
         "inside the saving transaction, before its commit, the layer must have delivered nothing; a message saved "
         "in a transaction the check rolls back must never be heard; group_send never awaited fails"),
    )),
}


# --- driving a consumer -----------------------------------------------------------------------------------------

SCOPE_KEY = "course.conversation"  # the check's Conversation, in the scope of the connection it records


@dataclass
class Conversation:
    """What one connection saw: the ASGI messages the application sent, in order, what it raised, and how many
    times each handler of the learner's consumer has returned (see `_observed`)."""

    label: str = ""
    outputs: list[dict] = field(default_factory=list)
    error: BaseException | None = None
    explained: str = ""  # the error, explained while its traceback was still there (see `_settle`)
    channel: str | None = None  # the consumer's channel on the channel layer
    returned: Counter = field(default_factory=Counter)  # "connect", "receive", "event" -> how many times

    @property
    def kinds(self) -> list[str]:
        return [m["type"] for m in self.outputs]

    @property
    def accepted(self) -> bool:
        return bool(self.outputs) and self.outputs[0]["type"] == "websocket.accept"

    @property
    def refused(self) -> bool:
        return bool(self.outputs) and self.outputs[0]["type"] == "websocket.close"

    def sent(self) -> list[dict]:
        return [m for m in self.outputs if m["type"] == "websocket.send"]


def _observed(consumer):
    """A subclass of the learner's consumer that tells its Conversation when each handler has returned (or raised).

    Once `websocket_connect` has returned, everything connect() sent is in the output queue already; once every
    event the channel layer put on a connection's channel was dispatched, every message the group sent it has
    arrived. So a check knows that nothing more is coming without waiting out a timeout.
    """

    def note(self, what: str) -> None:
        conv = self.scope.get(SCOPE_KEY)
        if isinstance(conv, Conversation):
            conv.returned[what] += 1

    class Observed(consumer):
        async def websocket_connect(self, message):
            conv = self.scope.get(SCOPE_KEY)
            if isinstance(conv, Conversation):
                conv.channel = getattr(self, "channel_name", None)
            try:
                await super().websocket_connect(message)
            finally:
                note(self, "connect")

        async def websocket_receive(self, message):
            try:
                await super().websocket_receive(message)
            finally:
                note(self, "receive")

        async def dispatch(self, message):
            try:
                await super().dispatch(message)
            finally:
                if not str(message.get("type", "")).startswith("websocket."):
                    note(self, "event")

    Observed.__name__, Observed.__qualname__ = consumer.__name__, consumer.__qualname__
    return Observed


class CountingLayer(InMemoryChannelLayer):
    """The in-memory channel layer, counting the messages it put on each channel."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.delivered: Counter = Counter()

    async def send(self, channel, message):
        await super().send(channel, message)
        self.delivered[channel] += 1


IN_MEMORY = {"default": {"BACKEND": f"{__name__}.CountingLayer"}}


def _connection(app, route: str, label: str, headers=None):
    """A communicator for `route` (a path) and the Conversation that records it."""
    comm, conv = WebsocketCommunicator(app, route, headers=headers or []), Conversation(label)
    comm.scope[SCOPE_KEY] = conv
    return comm, conv


def _fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def _stopped(comm) -> bool:
    return comm._future is not None and comm.future.done()


def _note_error(comm, conv: Conversation) -> None:
    if _stopped(comm) and conv.error is None and not comm.future.cancelled():
        conv.error = comm.future.exception()


def _drain(comm, conv: Conversation) -> list[dict]:
    """What the application has sent and the check has not read yet, without waiting."""
    new = []
    while not comm.output_queue.empty():
        new.append(comm.output_queue.get_nowait())
    conv.outputs += new
    _note_error(comm, conv)
    return new


async def _next(comm, conv: Conversation, timeout: float) -> dict | None:
    """The application's next ASGI message, or None when it raised, ended, or sent nothing within `timeout`.

    Unlike `receive_output`, which waits out its whole timeout when the application has already failed, this
    returns as soon as either happens.
    """
    if not comm.output_queue.empty():
        conv.outputs.append(comm.output_queue.get_nowait())
        return conv.outputs[-1]
    if _stopped(comm):
        _note_error(comm, conv)
        return None
    get = asyncio.ensure_future(comm.output_queue.get())
    done, _ = await asyncio.wait({get, comm.future}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    if get in done:
        conv.outputs.append(get.result())
        return conv.outputs[-1]
    get.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await get
    if not get.cancelled():  # it got a message after all, just before it was cancelled
        conv.outputs.append(get.result())
        return conv.outputs[-1]
    _note_error(comm, conv)
    return None


async def _until(test, timeout: float = FIRST) -> bool:
    """Wait until `test()` is true (checked every 10 ms), for at most `timeout` seconds; whether it became true."""
    end = time.monotonic() + timeout
    while not test():
        if time.monotonic() > end:
            return False
        await asyncio.sleep(0.01)
    return True


async def _send(comm, conv: Conversation, message: dict) -> None:
    """Give the application one message, unless it has already stopped (then what it raised is recorded)."""
    comm.future  # noqa: B018 - starts the application on first use
    if _stopped(comm):
        _note_error(comm, conv)
        return
    await comm.input_queue.put(message)


async def _connect(comm, conv: Conversation, *, late: float = 2.0) -> None:
    """Open the connection and read everything connect() sent, once it has returned. A greeting that comes later
    (from a task the consumer started) gets `late` more seconds."""
    await _send(comm, conv, {"type": "websocket.connect"})
    await _until(lambda: conv.returned["connect"] or _stopped(comm))
    _drain(comm, conv)
    if conv.accepted and not conv.sent() and not _stopped(comm) and late:
        await _next(comm, conv, late)
        _drain(comm, conv)


async def _say(comm, conv: Conversation, content) -> None:
    await _send(comm, conv, {"type": "websocket.receive", "text": json.dumps(content)})


async def _handled(pairs, counts: list[int]) -> None:
    """Wait until each connection's consumer has handled `counts` received messages in all (or stopped)."""
    await _until(lambda: all(v.returned["receive"] >= n or _stopped(c) for (c, v), n in zip(pairs, counts,
                                                                                           strict=True)))


async def _settled(pairs) -> None:
    """Wait until every event the channel layer put on these connections' channels has been dispatched (or the
    consumer stopped), then read what they sent."""
    layer = get_channel_layer()
    await asyncio.sleep(0.05)  # an event a handler left to a task of its own

    def done():
        return all(_stopped(c) or v.channel is None or v.returned["event"] >= layer.delivered[v.channel]
                   for c, v in pairs)

    await _until(done)
    for comm, conv in pairs:
        _drain(comm, conv)


async def _close(comm, conv: Conversation) -> None:
    """The client goes away; the application gets a second to finish, then it is stopped. What it raised is
    recorded: a handler that raised is counted as returned a few loop turns before its application ends."""
    with contextlib.suppress(BaseException):
        if comm._future is not None and not comm.future.done():
            await comm.input_queue.put({"type": "websocket.disconnect", "code": 1000})
            await comm.wait(1)
    _note_error(comm, conv)
    with contextlib.suppress(BaseException):
        comm.stop(exceptions=False)


@contextlib.contextmanager
def _fresh_layer():
    """A private in-memory channel layer for the check (Channels rebuilds its layers when the setting changes)."""
    with override_settings(CHANNEL_LAYERS=IN_MEMORY):
        yield


def _require_consumer(ex: str, consumer, name: str) -> None:
    if not (isinstance(consumer, type) and hasattr(consumer, "as_asgi")):
        raise ExerciseFailed(ex, f"{name} should be a consumer class (a subclass of AsyncJsonWebsocketConsumer), "
                                 f"got {consumer!r}")


async def _forget_users(usernames: list[str]) -> None:
    """The users a check created, with their messages (the foreign key cascades)."""
    from django.contrib.auth.models import User

    with contextlib.suppress(Exception):
        async with asyncio.timeout(10):
            await User.objects.filter(username__in=usernames).adelete()


def _json_of(message: dict):
    """A `websocket.send` message's text as JSON; raises ValueError naming what it is otherwise."""
    if message.get("text") is None:
        raise ValueError("a binary frame, not a text frame of JSON")
    try:
        return json.loads(message["text"])
    except json.JSONDecodeError:
        raise ValueError(f"the text {message['text'][:60]!r}, which is not JSON") from None


# --- what the learner's consumer raised, explained --------------------------------------------------------------

def _learner_frame(exc: BaseException):
    """The last (frame, line number) of the traceback that is the learner's code (a notebook cell), or None."""
    frames = [(f, n) for f, n in traceback.walk_tb(exc.__traceback__) if is_learner_file(f.f_code.co_filename)]
    return frames[-1] if frames else None


def _orm_call(exc: BaseException) -> str:
    """The sync ORM method the learner's code called, from a SynchronousOnlyOperation's traceback.

    The first QuerySet or Model method after the learner's own frame, not the harness's `django_tail` (which starts
    after the last frame that is not Django's): when the ORM calls back into other code that queries again (a
    signal receiver, a model's own save()), this still names the call the learner's line made."""
    mine = _learner_frame(exc)
    after = False
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        if mine is not None and frame is mine[0]:
            after = True
            continue
        parts = frame.f_code.co_qualname.split(".")
        if (after or mine is None) and len(parts) == 2 and parts[0] in ("QuerySet", "Model"):
            return parts[1]
    return ""


def _explain(exc: BaseException, handler: str) -> str:
    """An exception from the learner's consumer as feedback: what raised, where, and what it means."""
    name = type(exc).__name__
    what = f"{name}: {exc}" if str(exc) else name
    mine = _learner_frame(exc)
    where = f"{mine[0].f_code.co_name}() (line {mine[1]} of your cell)" if mine else handler
    source = ""
    if mine:
        with contextlib.suppress(Exception):
            source = "".join(linecache.getline(mine[0].f_code.co_filename, n) for n in (mine[1] - 1, mine[1]))
    if isinstance(exc, SynchronousOnlyOperation):
        method = _orm_call(exc)
        called = f"`{method}()` is the sync ORM" if method else "a sync ORM call"
        twin = f" (`a{method}()`)" if method and not method.startswith("_") else ""
        text = (f"{where} raised SynchronousOnlyOperation: {called}, and an async handler runs on the event loop's "
                f"thread, where Django refuses it. Await its async twin{twin}, or put the sync code in a function "
                "and await database_sync_to_async(that function)")
        if "sync_to_async(" in source:
            text += (". Here the query ran before database_sync_to_async got it: hand over the function itself, "
                     "not the result of calling it")
        return text
    if isinstance(exc, ValueError) and "No handler for message type" in str(exc):
        return (f"a consumer raised {what}. An event's \"type\" names the handler that runs it, dots turned into "
                "underscores: \"room.message\" runs room_message(); no method of the consumer matches this type")
    if isinstance(exc, TypeError) and "'bool' object is not callable" in str(exc):
        return (f"{where} raised {what}. `user.is_authenticated` is a property (a bool), not a method: no "
                "parentheses")
    if isinstance(exc, KeyError) and mine and mine[0].f_code.co_name == "room_message":
        return (f"the given room_message() raised {what}: the event it got carries no \"text\" key. The event you "
                "send to the group is what the handler receives: it must carry the message's text under \"text\"")
    if isinstance(exc, ValueError) and "No route found" in str(exc):
        return (f"a WebSocket raised {what}: the application did not route it to `websocket_routes`, the routes "
                "it was given")
    if name == "IntegrityError":
        return (f"{where} raised {what}. The row broke a rule of its table: a field the table requires (a NOT NULL "
                "column such as the author) was not given a value")
    why = meaning(exc) or ("An exception in a handler ends the consumer: the client sees the connection drop with an "
                           "error (close code 1011) instead of an answer.")
    return f"{where} raised {what}. {why}"


def _settle(convs: list[Conversation], handler: str) -> None:
    """Explain what each conversation's application raised, then let its frames go: a coroutine they hold that
    was never awaited is then collected (and reported) inside this check's own capture, not in a later one."""
    for conv in convs:
        if conv.error is not None and not conv.explained:
            if isinstance(conv.error, NotImplementedError):
                conv.explained = "stub"
            else:
                conv.explained = _explain(conv.error, handler)
            traceback.clear_frames(conv.error.__traceback__)
            conv.error.__traceback__ = None


def _fail_on_errors(ex: str, convs: list[Conversation]) -> None:
    for conv in convs:
        if conv.explained == "stub":
            raise not_attempted(ex)
    for conv in convs:
        if conv.explained:
            raise ExerciseFailed(ex, conv.explained)


def _await_hint(what: str) -> str:
    return (f"calling an async method ({what}) only creates a coroutine: nothing is sent or done until it is "
            "awaited")


# --- exercise 'greet-on-connect' --------------------------------------------------------------------------------

@exercise_check("greet-on-connect")
async def greet_on_connect(GreetConsumer, n: int = 5) -> None:  # noqa: N803 - a class, named like one
    """Accept, await the profile lookup, greet with the visitor's name and the profile's colour; n at once."""
    ex = "greet-on-connect"
    _require_consumer(ex, GreetConsumer, "GreetConsumer")
    names = [_fresh(random.choice(["ada", "grace", "linus", "guido", "barbara", "ken"])) for _ in range(n)]
    profiles.reset(dict(zip(names, random.sample(PALETTE, n), strict=True)))
    app = URLRouter([path("ws/greet/<str:name>/", _observed(GreetConsumer).as_asgi())])
    comms, convs = zip(*(_connection(app, f"/ws/greet/{name}/", name) for name in names), strict=True)

    with _fresh_layer(), never_awaited() as dropped:
        try:
            async with watch_loop() as watch, asyncio.timeout(45):
                await asyncio.gather(*(_connect(c, v) for c, v in zip(comms, convs, strict=True)))
        finally:
            await asyncio.gather(*(_close(c, v) for c, v in zip(comms, convs, strict=True)))
            _settle(convs, "connect()")
    convs = list(convs)
    _fail_on_errors(ex, convs)
    expect_all_awaited(ex, dropped, _await_hint("accept(), send_json(), fetch_profile()"))
    on_loop = [c for c in profiles.calls if c[1] == "sync" and c[2] == "MainThread"]
    expect_not_blocked(ex, watch.max_gap, "fetch_profile_sync ran on the event loop's thread inside `async def "
                                          "connect`, and every other connection waited for it; await the async "
                                          "client" if on_loop else
                       "a sync call that waits (time.sleep, a sync client) inside `async def` stops every other "
                       "connection")
    _expect_greetings(ex, convs, names)
    looked_up = sorted(c[0] for c in profiles.calls)
    if looked_up != sorted(names):
        missing = sorted(set(names) - set(looked_up))
        raise ExerciseFailed(ex, f"the profile service was asked for {looked_up[:6]}, but the visitors were "
                                 f"{sorted(names)}" + (f" ({missing[0]} was never looked up)" if missing else "")
                                 + ": look each visitor up once, by the name in their URL")
    if profiles.max_in_flight < n:
        workers = {c[2] for c in profiles.calls if c[1] == "sync"}
        if workers:
            raise ExerciseFailed(ex, f"the {n} lookups ran one after another, with the sync client in "
                                     f"{len(workers)} worker thread(s): sync_to_async is thread-sensitive by "
                                     "default, so every call queues for the same thread. The async client does not "
                                     "need a thread at all")
        raise ExerciseFailed(ex, f"the {n} lookups did not overlap (at most {profiles.max_in_flight} at once): "
                                 "something made the connections wait for each other")
    passed(ex, f"{n} connections accepted, each greeted with its own name and the colour the service gave it; the "
               f"{n} lookups were all in flight at once and the loop never stalled")


def _expect_greetings(ex: str, convs: list[Conversation], names: list[str]) -> None:
    for conv in convs:
        if not conv.outputs:
            raise ExerciseFailed(ex, "the consumer sent nothing, not even an accept: the handshake never completes "
                                     "until connect() accepts it")
        if conv.kinds[0] == "websocket.send":
            raise ExerciseFailed(ex, "the consumer sent a message before accept(): the handshake is not complete "
                                     "yet (daphne raises \"Socket has not been accepted, so cannot send over it\"); "
                                     "accept first")
        if conv.refused:
            raise ExerciseFailed(ex, "the consumer closed (refused) the connection instead of accepting it")
    for conv in convs:
        if len(conv.outputs) < 2:
            raise ExerciseFailed(ex, "the connection was accepted but not greeted")
    for conv in convs:
        message = conv.outputs[1]
        if message["type"] == "websocket.close":
            raise ExerciseFailed(ex, "the consumer closed the connection instead of greeting")
        try:
            body = _json_of(message)
        except ValueError as exc:
            raise ExerciseFailed(ex, f"the greeting is {exc}: send a JSON object (send_json)") from None
        name, colour = conv.label, profiles.colours[conv.label]
        if not isinstance(body, dict) or set(body) != {"hello", "colour"}:
            keys = sorted(body) if isinstance(body, dict) else type(body).__name__
            also = " (that is the profile as the service returned it)" if body == profiles.profile(name) else ""
            raise ExerciseFailed(ex, f"the greeting should be an object with the keys \"hello\" and \"colour\", got "
                                     f"{keys}{also}")
        if body["hello"] != name:
            other = " (another connection's name: the name was kept where every connection shares it, a module " \
                    "global or a class attribute, instead of in a local variable)" if body["hello"] in names else ""
            raise ExerciseFailed(ex, f"the connection of {name} was greeted as {body['hello']!r}{other}: greet each "
                                     "visitor by the name in their URL")
        if body["colour"] != colour and name not in {c[0] for c in profiles.calls}:
            raise ExerciseFailed(ex, f"{name} was greeted with the colour {body['colour']!r}, but the profile service "
                                     f"was never asked for {name}: look up the visitor of this connection, the name "
                                     "in their URL")
        if body["colour"] != colour:
            raise ExerciseFailed(ex, f"{name} was greeted with the colour {body['colour']!r}, but the profile "
                                     f"service gave {name} the colour {colour!r} (the colours change on every run): "
                                     "greet with the colour of the profile you looked up")
    for conv in convs:
        extra = conv.kinds[2:]
        if "websocket.close" in extra:
            raise ExerciseFailed(ex, "the consumer closed the connection after the greeting: keep it open")
        if extra:
            raise ExerciseFailed(ex, f"after the greeting the consumer sent {len(extra)} more message(s): greet "
                                     "once")


# --- exercise 'save-message' -------------------------------------------------------------------------------------

@exercise_check("save-message")
async def save_message(SaveConsumer) -> None:  # noqa: N803
    """Save each message with the ORM from an async consumer; reply with its id and the room's count."""
    ex = "save-message"
    _require_consumer(ex, SaveConsumer, "SaveConsumer")
    from django.contrib.auth.models import User

    from sandbox.chat.models import Message

    room, other = _fresh("saved"), _fresh("other")
    writers, seeder = [_fresh("writer"), _fresh("writer")], _fresh("seeder")
    users = [*writers, seeder]
    try:
        async with asyncio.timeout(20):
            author = await User.objects.acreate(username=seeder)
            before = {room: random.randint(2, 4), other: random.randint(2, 4)}
            for where, k in before.items():
                for i in range(k):
                    await Message.objects.acreate(room=where, author=author, text=f"earlier {i} {uuid.uuid4().hex}")
            cookies = [await login_cookie(w) for w in writers]
        app = AuthMiddlewareStack(URLRouter([path("ws/save/<slug:room>/", _observed(SaveConsumer).as_asgi())]))
        # A and B write to `room`, C (A's user again) to `other`
        plan = [("A", writers[0], room, cookies[0]), ("B", writers[1], room, cookies[1]),
                ("C", writers[0], other, cookies[0])]
        comms, convs = zip(*(_connection(app, f"/ws/save/{r}/", label, scope_headers(c)) for label, _, r, c in plan),
                           strict=True)
        texts = {}  # text -> (connection index, its user, its room, how many it had sent with it)
        replies: dict[str, dict | None] = {}

        async def say(i: int) -> None:
            text = f"{random.choice(['hello', 'lunch?', 'ship it', 'on my way'])} {uuid.uuid4().hex[:8]}"
            texts[text] = (i, plan[i][1], plan[i][2], sum(1 for v in texts.values() if v[0] == i) + 1)
            handled = convs[i].returned["receive"]
            await _say(comms[i], convs[i], {"text": text})
            await _handled([(comms[i], convs[i])], [handled + 1])
            new = [m for m in _drain(comms[i], convs[i]) if m["type"] == "websocket.send"]
            replies[text] = new[0] if new else None

        with _fresh_layer(), never_awaited() as dropped:
            try:
                async with asyncio.timeout(60):
                    await asyncio.gather(*(_connect(c, v, late=0) for c, v in zip(comms, convs, strict=True)))
                    if all(v.accepted for v in convs):
                        for i in (0, 1, 2):  # one after another: each count is known exactly
                            await say(i)
                            if replies[list(texts)[-1]] is None:
                                break
                        else:
                            await asyncio.gather(say(0), say(1))  # two at once in one room
            finally:
                await asyncio.gather(*(_close(c, v) for c, v in zip(comms, convs, strict=True)))
                _settle(convs, "receive_json()")
        convs = list(convs)
        _fail_on_errors(ex, convs)
        expect_all_awaited(ex, dropped, _await_hint("acreate(), acount(), asave()"))
        for conv in convs:
            if not conv.accepted:
                raise ExerciseFailed(ex, f"a connection was not accepted (the consumer sent {conv.kinds}): the given "
                                         "connect() accepts it; did the exercise cell change?")
        if any(r is None for r in replies.values()):
            raise ExerciseFailed(ex, "receive_json() returned without a reply: the given last line sends it once the "
                                     "message is saved and counted; did the exercise cell change?")
        async with asyncio.timeout(20):
            await _expect_rows(ex, texts, replies, room, other, before)
    finally:
        await _forget_users(users)
    passed(ex, "five messages from two users over three connections were saved in their rooms with their authors; "
               "each reply named its row and counted the room's messages, the earlier ones included")


async def _expect_rows(ex, texts: dict, replies: dict, room: str, other: str, before: dict) -> None:
    from sandbox.chat.models import Message

    match = Q()
    for text in texts:
        match |= Q(text__contains=text.split()[-1])
    rows = [m async for m in Message.objects.filter(match).select_related("author").order_by("id")]
    for text, (_, username, where, _) in texts.items():
        found = [m for m in rows if text.split()[-1] in m.text]
        if not found:
            raise ExerciseFailed(ex, f"the message {text!r} was not saved: no Message holds its text")
        if len(found) > 1:
            raise ExerciseFailed(ex, f"the message {text!r} was saved {len(found)} times: save each message once")
        row = found[0]
        if row.room != where:
            raise ExerciseFailed(ex, f"the message {text!r} was saved in the room {row.room!r}, not in the consumer's "
                                     f"room {where!r} (the room of the connection's URL, drawn for this run)")
        if row.text != text:
            whole = " (the whole message, not its text)" if text in row.text and row.text != text else ""
            raise ExerciseFailed(ex, f"the message {text!r} was saved with the text {row.text!r}{whole}: save the "
                                     "message's \"text\"")
        if row.author.username != username:
            raise ExerciseFailed(ex, f"the message {text!r} was saved with the author {row.author.username!r}; it "
                                     f"came from {username!r}, the connection's logged-in user (scope[\"user\"])")
        body = replies[text]
        try:
            body = _json_of(body)
        except ValueError as exc:
            raise ExerciseFailed(ex, f"the reply to {text!r} is {exc}: did the given last line change?") from None
        if not isinstance(body, dict) or body.get("saved") != row.id:
            got = body.get("saved") if isinstance(body, dict) else body
            raise ExerciseFailed(ex, f"the reply to {text!r} says saved={got!r}, but its row's id is {row.id}: "
                                     "send the id of the message you saved")
    # the counts: exact for the three messages sent one after another, bounds for the two sent at once
    order = list(texts)
    in_room = {where: before[where] for where in before}
    total = await Message.objects.acount()
    for n, text in enumerate(order):
        i, _, where, own = texts[text]
        count = _json_of(replies[text]).get("count")
        if n < 3:
            in_room[where] += 1
            low = high = in_room[where]
        else:  # sent at the same time as another message to the same room
            low, high = in_room[where] + 1, in_room[where] + 2
        if isinstance(count, int) and low <= count <= high:
            continue
        why = ""
        if count == low - 1:
            why = " (one short: it was counted before the new message was saved)"
        elif count == own:
            why = (" (the number of messages this connection sent: the room holds other people's messages too, and "
                   "earlier ones)")
        elif isinstance(count, int) and count > high:
            why = f" (more than the room holds: the database holds {total} messages in every room; count this room's)"
        want = str(low) if low == high else f"{low} or {high}"
        raise ExerciseFailed(ex, f"after {text!r} the room {where!r} held {want} messages, but the reply said "
                                 f"count={count!r}{why}")
    if max(_json_of(replies[t]).get("count") for t in order[3:]) != in_room[room] + 2:
        raise ExerciseFailed(ex, "two messages were sent to the room at the same time, and neither reply counted "
                                 "both: count after you save, in the database")


# --- exercise 'room-broadcast' -----------------------------------------------------------------------------------

@exercise_check("room-broadcast")
async def room_broadcast(RoomConsumer) -> None:  # noqa: N803
    """One message reaches everyone in the room (the sender too) exactly once, in order, and nobody else."""
    ex = "room-broadcast"
    _require_consumer(ex, RoomConsumer, "RoomConsumer")
    app = URLRouter([path("ws/room/<slug:room>/", _observed(RoomConsumer).as_asgi())])
    room, elsewhere = _fresh(random.choice(["kitchen", "garden", "attic"])), _fresh("cellar")
    members = [_connection(app, f"/ws/room/{room}/", f"member {k}") for k in (1, 2, 3)]
    outsider = _connection(app, f"/ws/room/{elsewhere}/", "outsider")
    late = _connection(app, f"/ws/room/{room}/", "late")
    everyone = [*members, outsider, late]
    said = [_fresh("dinner is ready"), _fresh("who took the last cookie")]
    burst = {0: [_fresh(f"one-{k}") for k in range(3)], 1: [_fresh(f"two-{k}") for k in range(3)]}
    heard: dict[str, list] = {}  # phase -> per connection, what it received

    async def phase(name: str, speakers: list[tuple[tuple, list[str]]], listeners: list[tuple]) -> None:
        """The speakers say their texts (all at once), and each listener's messages are what it received once
        every handler is done and every event the layer delivered has been dispatched."""
        marks = [len(v.outputs) for _, v in listeners]
        counts = [pair[1].returned["receive"] + len(texts) for pair, texts in speakers]
        for j in range(max(len(texts) for _, texts in speakers)):
            for (comm, conv), texts in speakers:
                if j < len(texts):
                    await _say(comm, conv, {"text": texts[j]})
        await _handled([pair for pair, _ in speakers], counts)
        await _settled([*listeners, outsider])
        heard[name] = [[m for m in v.outputs[mark:] if m["type"] == "websocket.send"]
                       for (_, v), mark in zip(listeners, marks, strict=True)]

    with _fresh_layer(), never_awaited() as dropped:
        try:
            async with asyncio.timeout(60):
                for comm, conv in [*members, outsider]:
                    await _connect(comm, conv, late=0)
                if all(v.accepted for _, v in [*members, outsider]):
                    await phase("first", [(members[0], [said[0]])], members)
                    if all(len(h) == 1 for h in heard["first"]):
                        await _close(*members[2])  # member 3 leaves; "late" joins after the first message
                        await _connect(*late, late=0)
                        stay = [members[0], members[1], late]
                        if late[1].accepted:
                            await phase("second", [(members[1], [said[1]])], stay)
                            await phase("burst", [(members[0], burst[0]), (members[1], burst[1])], stay)
                _drain(*outsider)
                heard["outsider"] = outsider[1].sent()
        finally:
            await asyncio.gather(*(_close(c, v) for c, v in everyone))
            _settle([v for _, v in everyone], "the consumer")
    _fail_on_errors(ex, [v for _, v in everyone])
    expect_all_awaited(ex, dropped, _await_hint("group_send()"))
    for _, conv in [*members, outsider, late]:
        if conv.outputs and not conv.accepted:
            raise ExerciseFailed(ex, f"a connection was not accepted (the consumer sent {conv.kinds}): the given "
                                     "connect() accepts it; did the exercise cell change?")
    _expect_heard(ex, heard, said, burst)
    passed(ex, "each message reached everyone in the room exactly once, the sender too, in the order each sender "
               "sent it; a newcomer got what was said after it joined, and the other room heard nothing")


def _texts(ex: str, messages: list[dict]) -> list:
    texts = []
    for m in messages:
        try:
            body = _json_of(m)
        except ValueError as exc:
            raise ExerciseFailed(ex, f"a connection received {exc}: did the given room_message change?") from None
        texts.append(body.get("text") if isinstance(body, dict) else body)
    return texts


def _expect_heard(ex: str, heard: dict, said: list[str], burst: dict) -> None:
    first = [_texts(ex, h) for h in heard.get("first", [[], [], []])]
    got = [t.count(said[0]) for t in first]
    stray = [t for texts in first for t in texts if t != said[0]]
    if stray and not any(got):
        raise ExerciseFailed(ex, f"the room received {stray[0]!r} for the message {said[0]!r}: the event's "
                                 "\"text\" should be the message's text itself")
    if got == [1, 0, 0]:
        raise ExerciseFailed(ex, "only the sender received the message: sending to this one connection answers "
                                 "only it; the room is a group")
    if got[0] > 1:
        raise ExerciseFailed(ex, f"the sender received its own message {got[0]} times (twice or more): the group "
                                 "already includes the sender, so a second send to it is one too many")
    if any(g > 1 for g in got):
        raise ExerciseFailed(ex, "a connection in the room received the message more than once: send it once")
    if not any(got):
        raise ExerciseFailed(ex, "0 of the 3 connections in the room received the message: send it to the group "
                                 "that connect() joined, the one named for this connection's room")
    if got[0] == 0 and all(got[1:]):
        raise ExerciseFailed(ex, "everyone but the sender received the message: the text asks for the sender too")
    if not all(got):
        raise ExerciseFailed(ex, f"{sum(map(bool, got))} of the 3 connections in the room received the message")
    if heard.get("outsider"):
        raise ExerciseFailed(ex, "a connection in another room received the message: send only to this room's group")
    second = [_texts(ex, h) for h in heard.get("second", [[], [], []])]
    if said[0] in second[2]:
        raise ExerciseFailed(ex, "a connection that joined after the first message received it too")
    if not all(said[1] in t for t in second):
        raise ExerciseFailed(ex, "after one member left and another joined, the next message did not reach "
                                 f"everyone in the room ({sum(said[1] in t for t in second)} of 3)")
    for texts in (_texts(ex, h) for h in heard.get("burst", [[], [], []])):
        for sent in burst.values():
            mine = [t for t in texts if t in sent]
            if sorted(mine) != sorted(sent):
                raise ExerciseFailed(ex, f"two members sent three messages each at the same time, and a connection "
                                         f"received {len(mine)} of one member's three: every message must reach "
                                         "everyone")
            if mine != sent:
                raise ExerciseFailed(ex, "two members sent three messages each at the same time, and a connection "
                                         "received one member's messages in another order than they were sent")


# --- exercise 'members-only' -------------------------------------------------------------------------------------

@exercise_check("members-only")
async def members_only(MembersOnlyConsumer) -> None:  # noqa: N803
    """Refuse an anonymous user before the handshake completes; accept and greet each member by name."""
    ex = "members-only"
    _require_consumer(ex, MembersOnlyConsumer, "MembersOnlyConsumer")
    app = AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter([
        path("ws/members/", _observed(MembersOnlyConsumer).as_asgi())])))
    usernames = [_fresh("member"), _fresh("member")]
    try:
        async with asyncio.timeout(20):
            cookies = [await login_cookie(u) for u in usernames]
        clients = [(f"member {u}", scope_headers(c)) for u, c in zip(usernames, cookies, strict=True)]
        clients += [("anonymous user (no session cookie)", scope_headers()),
                    ("anonymous user (an unknown session cookie)", scope_headers(f"sessionid={uuid.uuid4().hex}"))]
        comms, convs = zip(*(_connection(app, "/ws/members/", label, h) for label, h in clients), strict=True)

        with _fresh_layer(), never_awaited() as dropped:
            try:
                async with asyncio.timeout(45):
                    await asyncio.gather(*(_connect(c, v) for c, v in zip(comms, convs, strict=True)))
            finally:
                await asyncio.gather(*(_close(c, v) for c, v in zip(comms, convs, strict=True)))
                _settle(convs, "connect()")
    finally:
        await _forget_users(usernames)
    convs = list(convs)
    _fail_on_errors(ex, convs)
    expect_all_awaited(ex, dropped, _await_hint("accept(), close(), send_json()"))
    for conv in convs[2:]:
        who = f"an {conv.label}"
        if conv.accepted and "websocket.close" in conv.kinds:
            raise ExerciseFailed(ex, f"{who}: the handshake was accepted, then closed. By then the socket is open "
                                     "(the browser's onopen ran): refuse before accepting, by closing instead")
        if conv.accepted:
            raise ExerciseFailed(ex, f"{who} was accepted: AuthMiddlewareStack puts an AnonymousUser in "
                                     "scope['user'], an object, so a test of the user's truth is always true; ask "
                                     "whether the user is authenticated")
        if not conv.outputs:
            raise ExerciseFailed(ex, f"{who} got no answer: connect() returned without accepting or closing, so the "
                                     "handshake hangs until the "
                                     "client gives up; refuse it by closing the connection")
        if len(conv.outputs) > 1:
            raise ExerciseFailed(ex, f"{who}: after refusing, connect() kept going (it also sent "
                                     f"{conv.kinds[1:]}): stop right after closing")
    for conv, username in zip(convs[:2], usernames, strict=True):
        if not conv.accepted:
            raise ExerciseFailed(ex, f"the logged-in user {username} was not accepted (the consumer sent "
                                     f"{conv.kinds or 'nothing'})")
        sent = conv.sent()
        if not sent:
            raise ExerciseFailed(ex, f"the logged-in user {username} was accepted but not greeted")
        try:
            greeting = _json_of(sent[0])
        except ValueError as exc:
            raise ExerciseFailed(ex, f"the greeting is {exc}: send a JSON object (send_json)") from None
        if greeting != {"hello": username}:
            raise ExerciseFailed(ex, f"greet each member with {{\"hello\": <their username>}}: {username} (a user "
                                     f"made for this run) got {greeting}")
        if len(conv.outputs) > 2:
            extra = conv.kinds[2:]
            what = "closed the connection" if "websocket.close" in extra else f"sent {len(extra)} more message(s)"
            raise ExerciseFailed(ex, f"after greeting {username}, the consumer {what}: greet once, and keep the "
                                     "connection open")
    codes = sorted({str(c.outputs[0].get("code") or "1000, the default") for c in convs[2:]})
    passed(ex, f"both anonymous handshakes were refused before accept() (close code {', '.join(codes)}); the two "
               "members were accepted and greeted by name")


# --- exercise 'production-stack' ---------------------------------------------------------------------------------

@exercise_check("production-stack")
async def production_stack(production_application) -> None:
    """Pages work; WebSockets reach the given routes, only from the site itself, with the session user."""
    ex = "production-stack"
    if not callable(production_application):
        raise ExerciseFailed(ex, f"production_application should be a function, got {production_application!r}")
    class WhoAmI(AsyncJsonWebsocketConsumer):
        async def connect(self):
            await self.accept()
            user = self.scope.get("user")
            await self.send_json({"user": getattr(user, "username", None), "has_user": user is not None,
                                  "authenticated": bool(getattr(user, "is_authenticated", False))})

    route = f"ws/{_fresh('whoami')}/"
    app = await call(ex, production_application, [path(route, WhoAmI.as_asgi())], what="production_application",
                     timeout=10)
    if app is None:
        raise ExerciseFailed(ex, "production_application returned None: return the application")
    try:
        async with asyncio.timeout(15), httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                                          base_url="http://127.0.0.1") as http:
            page = await http.get("/chat/login/")
    except ValueError as exc:
        if "No application configured for scope type 'http'" in str(exc):
            raise ExerciseFailed(ex, "an HTTP request raised ValueError: No application configured for scope type "
                                     "'http'. With no 'http' route every page of the site answers 500: route "
                                     "\"http\" to Django's ASGI application") from None
        raise ExerciseFailed(ex, f"an HTTP request: {_explain(exc, 'the application')}") from None
    except TimeoutError:
        raise ExerciseFailed(ex, "GET /chat/login/ got no answer within 15 s: is \"http\" routed to Django's ASGI "
                                 "application?") from None
    if page.status_code != 200 or "text/html" not in page.headers.get("content-type", ""):
        raise ExerciseFailed(ex, f"GET /chat/login/ answered HTTP {page.status_code} "
                                 f"({page.headers.get('content-type', 'no content type')}), expected Django's page, "
                                 "HTTP 200")

    username = _fresh("visitor")
    try:
        async with asyncio.timeout(10):
            cookie = await login_cookie(username)
        probes = {"site": scope_headers(cookie), "foreign": scope_headers(cookie, "http://evil.example"),
                  "no origin": scope_headers(cookie, None), "anonymous": scope_headers()}
        pairs = {label: _connection(app, f"/{route}", label, h) for label, h in probes.items()}
        comms = {label: comm for label, (comm, _) in pairs.items()}
        results = {label: conv for label, (_, conv) in pairs.items()}

        async def talk(label):  # WhoAmI (the check's) accepts, then sends what it found; a refusal is one close
            await _send(comms[label], results[label], {"type": "websocket.connect"})
            if await _next(comms[label], results[label], FIRST) is not None and results[label].accepted:
                await _next(comms[label], results[label], FIRST)

        with _fresh_layer():
            try:
                async with asyncio.timeout(40):
                    await asyncio.gather(*(talk(label) for label in probes))
            finally:
                await asyncio.gather(*(_close(comms[label], results[label]) for label in comms))
                _settle(list(results.values()), "a WebSocket")
    finally:
        await _forget_users([username])
    _fail_on_errors(ex, list(results.values()))
    if results["foreign"].accepted or results["no origin"].accepted:
        which = "from http://evil.example" if results["foreign"].accepted else "without an Origin header"
        raise ExerciseFailed(ex, f"a WebSocket {which} was accepted: a page the site never served could open it, "
                                 "and the browser sends your user's cookies with it wherever their SameSite rules "
                                 "allow (cross-site WebSocket hijacking). Accept only the Origins of ALLOWED_HOSTS")
    for label in ("foreign", "no origin"):
        if not results[label].refused:
            raise ExerciseFailed(ex, f"a WebSocket ({label}) got no answer: refuse it (a close before any accept)")
    site = results["site"]
    if not site.accepted:
        raise ExerciseFailed(ex, f"a WebSocket from the site itself was refused (the application sent "
                                 f"{site.kinds or 'nothing'}): is the URLRouter of websocket_routes inside the "
                                 "stack?")
    body = _json_of(site.sent()[0]) if site.sent() else {}
    if not body.get("has_user"):
        raise ExerciseFailed(ex, "the consumer found no scope['user']: the user comes from AuthMiddlewareStack, "
                                 "which reads the session cookie (a session alone sets no user)")
    if body.get("user") != username:
        raise ExerciseFailed(ex, f"scope['user'] should be {username} (the user of the session cookie, made for this "
                                 f"run), got {body.get('user')!r}")
    anonymous = _json_of(results["anonymous"].sent()[0]) if results["anonymous"].sent() else {}
    if anonymous.get("authenticated"):
        raise ExerciseFailed(ex, f"a WebSocket without a session cookie came in as {anonymous.get('user')!r}: "
                                 "scope['user'] must come from each connection's own cookie")
    passed(ex, "pages answer 200; a WebSocket from the site itself reaches the given route as the session's user; "
               "from another site or without an Origin it is refused")


# --- exercise 'announce-from-sync': a sync receiver reaches a group ---------------------------------------------

async def _heard(layer, channel: str, quiet: float = 0.3) -> list[dict]:
    """Every event on `channel` until none came for `quiet` seconds."""
    events = []
    while True:
        try:
            async with asyncio.timeout(quiet):
                events.append(await layer.receive(channel))
        except TimeoutError:
            return events


def _save(room: str, user, text: str, *, commit: bool, early: list) -> int | None:
    """Sync code, as an admin action or a management command: save a message in a transaction, note whether an
    event had already reached the room's listener before the commit, and commit or roll back."""
    from sandbox.chat.models import Message

    layer = get_channel_layer()
    try:
        with transaction.atomic():
            message = Message.objects.create(room=room, author=user, text=text)
            early.append(sum(layer.delivered.values()))
            if not commit:
                raise _RolledBack
    except _RolledBack:
        return None
    return message.pk


class _RolledBack(Exception):
    """Raised by the check to roll its own transaction back."""


def _load_raw(room: str, user, text: str) -> None:
    """Save a message as `loaddata` does: `save_base(raw=True)`, in a transaction that commits."""
    from django.utils import timezone

    from sandbox.chat.models import Message

    with transaction.atomic():  # a raw save skips auto_now_add: a fixture names every field
        Message(room=room, author=user, text=text, sent=timezone.now()).save_base(raw=True)


def _edit(pk: int, text: str) -> None:
    from sandbox.chat.models import Message

    message = Message.objects.get(pk=pk)
    message.text = text
    message.save()


@exercise_check("announce-from-sync")
async def announce_from_sync(announce) -> None:
    """A sync post_save receiver: a new message's room hears `room.announce` after the commit, an edit's room hears
    `room.edit`; a rolled-back message is never announced; other rooms hear nothing."""
    from django.contrib.auth.models import User

    from sandbox.chat.models import Message

    ex = "announce-from-sync"
    if inspect.iscoroutinefunction(announce) or not callable(announce):
        raise ExerciseFailed(ex, "`announce` should be a plain (sync) function: Django calls post_save receivers "
                                 "from the thread that saved, as sync functions")
    room, other = _fresh("lobby"), _fresh("porch")
    uid = f"course-check-{uuid.uuid4().hex}"
    with _fresh_layer(), never_awaited() as dropped:
        layer = get_channel_layer()
        listener, bystander = await layer.new_channel(), await layer.new_channel()
        await layer.group_add(f"room-{room}", listener)
        await layer.group_add(f"room-{other}", bystander)
        user = await User.objects.acreate(username=_fresh("poster"))
        texts = [_fresh("hello"), _fresh("edited"), _fresh("never sent"), _fresh("from async code"),
                 _fresh("from a fixture")]
        early: list[int] = []
        post_save.connect(announce, sender=Message, weak=False, dispatch_uid=uid)
        try:
            async with asyncio.timeout(30):
                pk = await sync_to_async(_save)(room, user, texts[0], commit=True, early=early)
                await sync_to_async(_edit)(pk, texts[1])
                await sync_to_async(_load_raw)(room, user, texts[4])
                await sync_to_async(_save)(room, user, texts[2], commit=False, early=early)
                await Message.objects.acreate(room=room, author=user, text=texts[3])
                heard, stray = await _heard(layer, listener), await _heard(layer, bystander, quiet=0.1)
        except Exception as exc:
            if isinstance(exc, ExerciseFailed | NotImplementedError):
                raise
            raise ExerciseFailed(ex, f"saving a message raised {type(exc).__name__}: {str(exc)[:160]}. "
                                     f"{meaning(exc)}".strip()) from None
        finally:
            post_save.disconnect(sender=Message, dispatch_uid=uid)
            await Message.objects.filter(author=user).adelete()
            await user.adelete()
    expect_all_awaited(ex, dropped, "group_send() is a coroutine function: from sync code, run it through "
                                    "async_to_sync, which hands it to the event loop and waits")
    _expect_announced(ex, heard, stray, early, texts, pk, user.username)
    passed(ex, "a new message announced to its room after the commit, an edit as an edit, nothing for a rolled-back "
               "message, a fixture or another room, and a message saved from async code announced too")


def _expect_announced(ex: str, heard: list[dict], stray: list[dict], early: list[int], texts: list[str], pk: int,
                      username: str) -> None:
    if texts[2] in str(heard):
        raise ExerciseFailed(ex, "a message whose transaction was rolled back was announced: the room heard of a "
                                 "message that does not exist. Send the event when the transaction commits")
    if early and early[0]:
        raise ExerciseFailed(ex, "the room heard of the new message before its transaction committed: a reader "
                                 "could look for it and not find it. Send the event when the transaction commits")
    if texts[4] in str(heard):
        raise ExerciseFailed(ex, "a message loaded from a fixture (post_save with raw=True, as loaddata sends it) was "
                                 "announced: fixtures load rows, nobody wrote a message")
    if stray:
        raise ExerciseFailed(ex, f"another room's group received {stray[0]}: send only to the message's own room, "
                                 "the group `room-<its room>`")
    expected = [{"type": "room.announce", "text": texts[0], "author": username},
                {"type": "room.edit", "id": pk, "text": texts[1]},
                {"type": "room.announce", "text": texts[3], "author": username}]
    if not heard:
        raise ExerciseFailed(ex, "the room's group received nothing: send to the group `room-<the message's room>` "
                                 "through the default channel layer")
    if any(e.get("type") == "room.announce" and e.get("text") == texts[1] for e in heard):
        raise ExerciseFailed(ex, "an edit was announced as a new message: `created` tells a new row from an update")
    if heard != expected:
        raise ExerciseFailed(ex, f"the room heard {str(heard)[:200]}; expected, in order: {expected}")
