"""Planted answers for chapter 06, Channels and WebSockets."""

from tests.planted.common import Acceptable, Planted

CHAPTER = "06-channels-websockets"

_GREET = 'await self.send_json({"hello": name, "colour": profile["colour"]})'
_COUNT = "count = await Message.objects.filter(room=self.room).acount()"
_SAVE = 'message = await Message.objects.acreate(room=self.room, author=user, text=content["text"])'
_HELLO = 'await self.send_json({"hello": user.username})'

# exercise 'announce-from-sync': the solution, and each planted answer as one change to it
_ANNOUNCE = """\
if kwargs.get("raw"):
    return
group = f"room-{instance.room}"
if created:
    event = {"type": "room.announce", "text": instance.text, "author": instance.author.username}
else:
    event = {"type": "room.edit", "id": instance.pk, "text": instance.text}
send = async_to_sync(get_channel_layer().group_send)
transaction.on_commit(lambda: send(group, event))"""


def _announce(old: str, new: str) -> str:
    assert old in _ANNOUNCE, old
    return _ANNOUNCE.replace(old, new)


PLANTED: dict[str, list[Planted]] = {
    "greet-on-connect": [
        Planted("forgets accept() and sends straight away",
                f"profile = await fetch_profile(name)\n{_GREET}", "before accept()", "protocol"),
        Planted("calls the sync client inside async def",
                f"await self.accept()\nprofile = fetch_profile_sync(name)\n{_GREET}", "event loop was blocked"),
        Planted("forgets to await accept()",
                f"self.accept()\nprofile = await fetch_profile(name)\n{_GREET}", "never awaited"),
        Planted("forgets to await the lookup",
                f"await self.accept()\nprofile = fetch_profile(name)\n{_GREET}", "an `await` is missing"),
        Planted("sends the profile as the service returned it",
                "await self.accept()\nawait self.send_json(await fetch_profile(name))",
                'the keys "hello" and "colour"', "result"),
        Planted("greets with a colour of its own, not the profile's",
                'await self.accept()\nprofile = await fetch_profile(name)\n'
                'await self.send_json({"hello": name, "colour": "blue"})',
                "the colour of the profile you looked up", "result"),
        Planted("keeps the visitor's name in a module global",
                "global visitor\nvisitor = name\nawait self.accept()\nprofile = await fetch_profile(visitor)\n"
                'await self.send_json({"hello": visitor, "colour": profile["colour"]})',
                "another connection's name", "concurrency"),
        Planted("closes the connection after greeting",
                f"await self.accept()\nprofile = await fetch_profile(name)\n{_GREET}\nawait self.close()",
                "keep it open", "protocol"),
    ],
    "save-message": [
        Planted("saves with the sync ORM",
                'message = Message.objects.create(room=self.room, author=user, text=content["text"])\n' + _COUNT,
                "event loop's thread"),
        Planted("forgets to await acreate",
                'message = Message.objects.acreate(room=self.room, author=user, text=content["text"])\n' + _COUNT,
                "an `await` is missing"),
        Planted("counts with the sync ORM",
                f"{_SAVE}\ncount = Message.objects.filter(room=self.room).count()", "event loop's thread"),
        Planted("calls create before handing it to database_sync_to_async",
                "message = await database_sync_to_async(\n"
                '    Message.objects.create(room=self.room, author=user, text=content["text"]))()\n' + _COUNT,
                "hand over the function itself"),
        Planted("counts every room's messages",
                f"{_SAVE}\ncount = await Message.objects.acount()", "every room", "condition"),
        Planted("counts before saving",
                f"{_COUNT}\n{_SAVE}", "counted before the new message was saved", "condition"),
        Planted("counts the messages this connection sent",
                f'{_SAVE}\nself.sent = getattr(self, "sent", 0) + 1\ncount = self.sent',
                "the number of messages this connection sent", "concurrency"),
        Planted("saves in the lesson's room instead of the consumer's",
                'message = await Message.objects.acreate(room="lobby", author=user, text=content["text"])\n'
                'count = await Message.objects.filter(room="lobby").acount()',
                "not in the consumer's room", "result"),
        Planted("saves the whole message as its text",
                'message = await Message.objects.acreate(room=self.room, author=user, text=content)\n' + _COUNT,
                "the whole message", "result"),
    ],
    "room-broadcast": [
        Planted("answers only the sender",
                'await self.send_json({"text": content["text"]})', "only the sender", "condition"),
        Planted("gives the event a type no handler matches",
                'await self.channel_layer.group_send(self.group, {"type": "room_msg", "text": content["text"]})',
                "names the handler", "protocol"),
        Planted("forgets to await group_send",
                'self.channel_layer.group_send(self.group, {"type": "room.message", "text": content["text"]})',
                "never awaited"),
        Planted("sends to a group the consumer never joined",
                'await self.channel_layer.group_send("room", {"type": "room.message", "text": content["text"]})',
                "0 of the 3 connections", "result"),
        Planted("also answers the sender directly",
                'await self.channel_layer.group_send(self.group, {"type": "room.message", "text": content["text"]})\n'
                'await self.send_json({"text": content["text"]})',
                "twice or more", "condition"),
        Planted("carries the text under another key",
                'await self.channel_layer.group_send(self.group, {"type": "room.message", "message": content["text"]})',
                'carries no "text" key', "protocol"),
        Planted("sends the whole message as the text",
                'await self.channel_layer.group_send(self.group, {"type": "room.message", "text": content})',
                "the message's text itself", "result"),
    ],
    "members-only": [
        Planted("tests the user object's truth instead of is_authenticated",
                f"if not user:\n    await self.close(code=4401)\n    return\nawait self.accept()\n{_HELLO}",
                "is always true", "condition"),
        Planted("accepts first, then checks",
                f"await self.accept()\nif not user.is_authenticated:\n    await self.close(code=4401)\n    return\n"
                f"{_HELLO}", "accepted, then closed", "protocol"),
        Planted("refuses but does not return",
                f"if not user.is_authenticated:\n    await self.close(code=4401)\nawait self.accept()\n{_HELLO}",
                "kept going", "protocol"),
        Planted("calls is_authenticated like a method",
                f"if not user.is_authenticated():\n    await self.close(code=4401)\n    return\nawait self.accept()\n"
                f"{_HELLO}", "not a method", "condition"),
        Planted("forgets to await close()",
                f"if not user.is_authenticated:\n    self.close(code=4401)\n    return\nawait self.accept()\n{_HELLO}",
                "never awaited"),
        Planted("greets every member as the lesson's user",
                'if not user.is_authenticated:\n    await self.close(code=4401)\n    return\nawait self.accept()\n'
                'await self.send_json({"hello": "alice"})', "their username", "result"),
    ],
    "production-stack": [
        Planted("the document's router: no http route",
                'return ProtocolTypeRouter({\n'
                '    "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_routes))),\n'
                "})",
                "every page of the site answers 500", "protocol"),
        Planted("no Origin check",
                'return ProtocolTypeRouter({\n    "http": django_asgi_app,\n'
                '    "websocket": AuthMiddlewareStack(URLRouter(websocket_routes)),\n})',
                "cross-site WebSocket hijacking", "condition"),
        Planted("no session user",
                'return ProtocolTypeRouter({\n    "http": django_asgi_app,\n'
                '    "websocket": AllowedHostsOriginValidator(URLRouter(websocket_routes)),\n})',
                "AuthMiddlewareStack", "result"),
        Planted("an Origin check that allows every origin",
                "from channels.security.websocket import OriginValidator\n"
                'return ProtocolTypeRouter({\n    "http": django_asgi_app,\n'
                '    "websocket": OriginValidator(AuthMiddlewareStack(URLRouter(websocket_routes)), ["*"]),\n})',
                "cross-site WebSocket hijacking", "condition"),
        Planted("a session without the user",
                "from channels.sessions import SessionMiddlewareStack\n"
                'return ProtocolTypeRouter({\n    "http": django_asgi_app,\n'
                '    "websocket": AllowedHostsOriginValidator(SessionMiddlewareStack(URLRouter(websocket_routes))),\n'
                "})",
                "a session alone sets no user", "result"),
        Planted("routes WebSockets to the sandbox's routes instead of the ones given",
                "from sandbox.routing import websocket_urlpatterns\n"
                'return ProtocolTypeRouter({\n    "http": django_asgi_app,\n'
                '    "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),\n'
                "})",
                "the routes it was given", "result"),
    ],
    "announce-from-sync": [
        Planted("calls group_send without async_to_sync",
                _announce("send = async_to_sync(get_channel_layer().group_send)",
                          "send = get_channel_layer().group_send"), "never awaited"),
        Planted("sends at once, inside the transaction",
                _announce("transaction.on_commit(lambda: send(group, event))", "send(group, event)"),
                "Send the event when the transaction commits", "condition"),
        Planted("announces an edit as a new message",
                _announce("if created:", "if True:"), "`created` tells a new row", "result"),
        Planted("sends to a group named after the room alone",
                _announce('group = f"room-{instance.room}"', "group = instance.room"), "received nothing", "result"),
        Planted("announces a fixture load as a new message", _announce('if kwargs.get("raw"):\n    return\n', ""),
                "loaded from a fixture", "condition"),
        Planted("names the author by id, not by username",
                _announce('"author": instance.author.username', '"author": instance.author_id'), "expected, in order",
                "result"),
    ],
}
ACCEPTABLE: dict[str, list[Acceptable]] = {
    "greet-on-connect": [
        Acceptable("looks the profile up before accepting, keys in another order",
                   "profile = await fetch_profile(name)\nawait self.accept()\n"
                   'await self.send_json({"colour": profile["colour"], "hello": name})'),
        Acceptable("send() with json.dumps instead of send_json()",
                   "import json\nawait self.accept()\nprofile = await fetch_profile(name=name)\n"
                   'await self.send(text_data=json.dumps({"hello": name, "colour": profile["colour"]}))'),
    ],
    "save-message": [
        Acceptable("a Message saved with asave(), counted with keyword arguments in another order",
                   'message = Message(text=content["text"], author=user, room=self.room)\nawait message.asave()\n'
                   "count = await Message.objects.filter(room=self.room).acount()"),
        Acceptable("one sync function through database_sync_to_async",
                   "def save_and_count():\n"
                   '    saved = Message.objects.create(room=self.room, author=user, text=content["text"])\n'
                   "    return saved, Message.objects.filter(room=self.room).count()\n"
                   "message, count = await database_sync_to_async(save_and_count)()"),
    ],
    "room-broadcast": [
        Acceptable("keyword arguments, and the handler's name as the type",
                   "await self.channel_layer.group_send(group=self.group, message=dict(type='room_message', "
                   "text=content['text']))"),
    ],
    "members-only": [
        Acceptable("DenyConnection, and is_anonymous",
                   "from channels.exceptions import DenyConnection\n"
                   "if user.is_anonymous:\n    raise DenyConnection\nawait self.accept()\n"
                   'await self.send_json(content={"hello": user.get_username()})'),
        Acceptable("accepts in the if branch, close() without a code",
                   "if user.is_authenticated:\n    await self.accept()\n    await self.send_json({'hello': "
                   "user.username})\nelse:\n    await self.close()"),
    ],
    "production-stack": [
        Acceptable("the Origin check inside the session user, and the auth middleware spelled out",
                   "from channels.auth import AuthMiddleware\nfrom channels.sessions import CookieMiddleware, "
                   "SessionMiddleware\n"
                   "return ProtocolTypeRouter({\n"
                   '    "websocket": CookieMiddleware(SessionMiddleware(AuthMiddleware(\n'
                   "        AllowedHostsOriginValidator(URLRouter(websocket_routes))))),\n"
                   '    "http": django_asgi_app,\n})'),
    ],
    "announce-from-sync": [
        Acceptable("a function handed to on_commit, and the layer looked up when it runs",
                   "if kwargs.get('raw'):\n    return\n"
                   "def tell():\n"
                   "    event = ({'type': 'room.announce', 'text': instance.text, 'author': instance.author.username}\n"
                   "             if created else {'type': 'room.edit', 'id': instance.pk, 'text': instance.text})\n"
                   "    async_to_sync(get_channel_layer().group_send)(f'room-{instance.room}', event)\n"
                   "transaction.on_commit(tell)"),
    ],
}
