"""The chat of chapter 06: its page, its consumer (history, presence, limits, refusals), the source document's
routing as written, and delivery across two real daphne processes (through Redis; not through the in-memory
layer)."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from tests.markers import needs_redis

IN_MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture
def fresh_layer(lab):
    """A new in-memory channel layer for the test: each test runs in its own event loop."""
    from django.test import override_settings

    with override_settings(CHANNEL_LAYERS=IN_MEMORY):
        yield


def _room() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


async def _chat(room: str, cookie: str | None, origin: str | None = "http://127.0.0.1"):
    from channels.testing import WebsocketCommunicator

    from sandbox.asgi import application
    from sandbox.lab.experiments.chat_clients import scope_headers

    return WebsocketCommunicator(application, f"/ws/chat/{room}/", headers=scope_headers(cookie, origin))


async def _until(comm, kind: str, timeout: float = 5) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            event = await comm.receive_json_from(timeout=timeout)
            if event["type"] == kind:
                return event


async def test_the_page_needs_a_login_and_opens_the_room_socket(lab):
    from sandbox.lab.experiments.chat_clients import login_cookie

    cookie = await login_cookie("page-reader")
    async with lab.client() as http:
        anonymous, page = await http.get("/chat/lobby/"), await http.get("/chat/lobby/", headers={"Cookie": cookie})
    assert anonymous.status_code == 302 and anonymous.headers["location"] == "/chat/login/?next=/chat/lobby/"
    assert page.status_code == 200
    assert "new WebSocket(" in page.text and "/ws/chat/${room}/" in page.text and "page-reader" in page.text


async def test_login_page_is_served(lab):
    async with lab.client() as http:
        page = await http.get("/chat/login/")
    assert page.status_code == 200 and 'name="username"' in page.text and "csrfmiddlewaretoken" in page.text


async def test_messages_are_broadcast_saved_and_replayed_with_presence(lab, fresh_layer):
    from sandbox.chat.models import Message, Presence
    from sandbox.lab.experiments.chat_clients import login_cookie

    room = _room()

    alice, bob, carol = [await login_cookie(n) for n in ("alice", "bob", "carol")]
    a, b = await _chat(room, alice), await _chat(room, bob)
    assert (await a.connect(timeout=5))[0]
    welcome_a = await _until(a, "welcome")
    assert (await _until(a, "presence"))["joined"] == "alice"
    assert (await b.connect(timeout=5))[0]
    welcome_b = await _until(b, "welcome")
    bob_joined = await _until(a, "presence")
    await a.send_json_to({"text": "hello, room"})
    heard = [await _until(c, "message") for c in (a, b)]
    c = await _chat(room, carol)
    await c.connect(timeout=5)
    welcome_c = await _until(c, "welcome")
    assert (await _until(a, "presence"))["joined"] == "carol"
    await b.disconnect()
    bob_left = await _until(a, "presence")
    for comm in (a, c):
        await comm.disconnect()
    saved = [(m.author.username, m.text) async for m in Message.objects.filter(room=room).select_related("author")]
    presence_left = await Presence.objects.filter(room=room).acount()

    assert welcome_a["who"] == ["alice"] and welcome_a["history"] == [] and welcome_a["you"] == "alice"
    assert welcome_b["who"] == ["alice", "bob"]
    assert bob_joined == {"type": "presence", "who": ["alice", "bob"], "joined": "bob"}
    assert [(h["author"], h["text"]) for h in heard] == [("alice", "hello, room")] * 2
    assert [(m["author"], m["text"]) for m in welcome_c["history"]] == [("alice", "hello, room")]
    assert bob_left == {"type": "presence", "who": ["alice", "carol"], "left": "bob"}
    assert saved == [("alice", "hello, room")] and presence_left == 0


async def test_a_second_tab_of_the_same_user_is_not_announced_again(lab, fresh_layer):
    from sandbox.lab.experiments.chat_clients import login_cookie

    room = _room()

    cookie = await login_cookie("two-tabs")
    first, second = await _chat(room, cookie), await _chat(room, cookie)
    await first.connect(timeout=5)
    await _until(first, "presence")  # the user joined
    await second.connect(timeout=5)
    welcome = await _until(second, "welcome")
    quiet = await first.receive_nothing(timeout=0.3)
    await second.disconnect()
    still_quiet = await first.receive_nothing(timeout=0.3)
    await first.disconnect()

    assert welcome["who"] == ["two-tabs"] and quiet and still_quiet


async def test_anonymous_users_and_foreign_origins_are_refused(lab, fresh_layer):
    from sandbox.lab.experiments.chat_clients import login_cookie

    cookie = await login_cookie("refused")
    results = []
    for cookie_, origin in ((None, "http://127.0.0.1"), (cookie, "http://evil.example"), (cookie, None)):
        comm = await _chat(_room(), cookie_, origin)
        results.append(await comm.connect(timeout=5))

    anonymous, foreign, no_origin = results
    assert anonymous == (False, 4401)
    assert foreign[0] is False and no_origin[0] is False


async def test_limits_and_bad_frames_are_answered_or_refused(lab, fresh_layer):
    from sandbox.chat.consumers import MAX_FRAME, MAX_TEXT
    from sandbox.lab.experiments.chat_clients import login_cookie

    room = _room()

    comm = await _chat(room, await login_cookie("limits"))
    await comm.connect(timeout=5)
    await _until(comm, "welcome")
    answers = []
    for frame in (json.dumps({"text": "x" * (MAX_TEXT + 1)}), "not json", json.dumps({"text": "  "}),
                  json.dumps(["text"])):
        await comm.send_to(text_data=frame)
        answers.append(await _until(comm, "error"))
    await comm.send_to(text_data="x" * (MAX_FRAME + 1))
    closed = await comm.receive_output(timeout=5)
    await comm.disconnect(code=1009)

    assert "at most 2000 characters" in answers[0]["error"]
    assert all(a["type"] == "error" for a in answers)
    assert closed == {"type": "websocket.close", "code": 1009}


async def test_history_and_who_views(lab, fresh_layer):
    from django.contrib.auth.models import User

    from sandbox.chat.models import Message

    room = _room()

    user, _ = await User.objects.aget_or_create(username="historian")
    for i in range(3):
        await Message.objects.acreate(room=room, author=user, text=f"m{i}")
    async with lab.client() as http:
        history, who = (await http.get(f"/chat/{room}/history/")).json(), (await http.get(f"/chat/{room}/who/")).json()

    assert [m["text"] for m in history["messages"]] == ["m0", "m1", "m2"]
    assert who == {"room": room, "who": []}


async def test_the_documents_routing_runs_as_written_and_fails_every_http_request(lab):
    from channels.testing import WebsocketCommunicator

    from sandbox.chat import document

    comm = WebsocketCommunicator(document.application, "/ws/chat/", headers=[(b"origin", b"http://evil.example")])
    connected = await comm.connect(timeout=5)
    greeting = await comm.receive_json_from(timeout=5)
    await comm.disconnect()
    with pytest.raises(ValueError, match="No application configured for scope type 'http'"):
        async with lab.client(document.application) as http:
            await http.get("/")

    assert connected == (True, None) and greeting == {"message": "Connected!"}


async def test_the_production_stack_serves_the_documents_consumer_only_to_its_own_site(lab, fresh_layer):
    from channels.testing import WebsocketCommunicator

    from sandbox.asgi import application

    results = []
    for origin in (b"http://127.0.0.1", b"http://evil.example"):
        comm = WebsocketCommunicator(application, "/ws/chat/", headers=[(b"origin", origin)])
        connected, _ = await comm.connect(timeout=5)
        results.append(connected and await comm.receive_json_from(timeout=5))
        if connected:
            await comm.disconnect()
    assert results == [{"message": "Connected!"}, False]


async def _across(server_a, server_b, room: str, wait: float) -> tuple[dict, dict | None]:
    """Alice on server A, bob on server B; bob speaks. Returns bob's welcome and what alice heard (or None)."""
    from sandbox.lab.experiments.chat_clients import login_cookie, next_event, open_chat

    alice_ws, _ = await open_chat(server_a, room, await login_cookie("alice"))
    bob_ws, bob_welcome = await open_chat(server_b, room, await login_cookie("bob"))
    try:
        await bob_ws.send(json.dumps({"text": "across"}))
        try:
            heard = await next_event(alice_ws, "message", timeout=wait)
        except TimeoutError:
            heard = None
        return bob_welcome, heard
    finally:
        await alice_ws.close()
        await bob_ws.close()


@pytest.mark.slow  # servers and Redis
@needs_redis
async def test_a_message_crosses_processes_through_redis(lab):
    redis = await lab.start_redis(quiet=True, emulate_if_missing=False)
    servers = []
    try:
        env = {"SANDBOX_REDIS_URL": redis.url}
        servers = await asyncio.gather(*(lab.start_server("daphne", env=env, quiet=True) for _ in range(2)))
        bob_welcome, heard = await _across(*servers, _room(), wait=10)
    finally:
        for server in [*servers, redis]:
            server.stop()

    a, b = servers
    assert bob_welcome["who"] == ["alice", "bob"] and bob_welcome["pid"] == b.pid
    assert heard is not None and heard["text"] == "across" and heard["pid"] == b.pid != a.pid


@pytest.mark.slow  # servers
async def test_the_in_memory_layer_does_not_cross_processes_and_daphne_refuses_strangers(lab):
    from websockets.exceptions import InvalidStatus

    from sandbox.lab.experiments.chat_clients import open_chat

    servers = await asyncio.gather(*(lab.start_server("daphne", quiet=True) for _ in range(2)))
    try:
        refusals = []
        for origin in ("http://127.0.0.1", "http://evil.example"):
            cookie = None if origin == "http://127.0.0.1" else "sessionid=none"
            with pytest.raises(InvalidStatus) as refused:
                await open_chat(servers[0], "lobby", cookie, origin=origin)
            refusals.append(refused.value.response.status_code)
        bob_welcome, heard = await _across(*servers, _room(), wait=2)
    finally:
        for server in servers:
            server.stop()

    assert refusals == [403, 403]
    assert bob_welcome["who"] == ["alice", "bob"], "presence lives in the database: both processes see it"
    assert heard is None, "the in-memory layer keeps groups in one process: the message must not arrive"
