"""Planted wrong answers for chapter 06, Channels and WebSockets."""

from tests.planted.common import Planted

CHAPTER = "06-channels-websockets"

_GREET = 'await self.send_json({"hello": name, "colour": profile["colour"]})'

PLANTED: dict[str, list[Planted]] = {
    "greet-on-connect": [
        Planted("forgets accept() and sends straight away",
                f"profile = await fetch_profile(name)\n{_GREET}", "before accept()"),
        Planted("calls the sync client inside async def",
                f"await self.accept()\nprofile = fetch_profile_sync(name)\n{_GREET}", "event loop was blocked"),
        Planted("forgets to await accept()",
                f"self.accept()\nprofile = await fetch_profile(name)\n{_GREET}", "never awaited"),
        Planted("forgets to await the lookup",
                f"await self.accept()\nprofile = fetch_profile(name)\n{_GREET}", "missing `await`"),
    ],
    "save-message": [
        Planted("saves with the sync ORM",
                'message = Message.objects.create(room=self.room, author=user, text=content["text"])\n'
                "count = await Message.objects.filter(room=self.room).acount()",
                "event loop's thread"),
        Planted("forgets to await acreate",
                'message = Message.objects.acreate(room=self.room, author=user, text=content["text"])\n'
                "count = await Message.objects.filter(room=self.room).acount()",
                "missing `await`"),
        Planted("counts with the sync ORM",
                'message = await Message.objects.acreate(room=self.room, author=user, text=content["text"])\n'
                "count = Message.objects.filter(room=self.room).count()",
                "event loop's thread"),
        Planted("calls create before handing it to database_sync_to_async",
                "message = await database_sync_to_async(\n"
                '    Message.objects.create(room=self.room, author=user, text=content["text"]))()\n'
                "count = await Message.objects.filter(room=self.room).acount()",
                "event loop's thread"),
    ],
    "room-broadcast": [
        Planted("answers only the sender",
                'await self.send_json({"text": content["text"]})', "only the sender"),
        Planted("gives the event a type no handler matches",
                'await self.channel_layer.group_send(self.group, {"type": "room_msg", "text": content["text"]})',
                "names the handler"),
        Planted("forgets to await group_send",
                'self.channel_layer.group_send(self.group, {"type": "room.message", "text": content["text"]})',
                "never awaited"),
        Planted("sends to a group the consumer never joined",
                'await self.channel_layer.group_send("room", {"type": "room.message", "text": content["text"]})',
                "0 of the 3 connections"),
    ],
    "members-only": [
        Planted("tests the user object's truth instead of is_authenticated",
                "if not user:\n    await self.close(code=4401)\n    return\n"
                'await self.accept()\nawait self.send_json({"hello": user.username})',
                "is always true"),
        Planted("accepts first, then checks",
                "await self.accept()\nif not user.is_authenticated:\n    await self.close(code=4401)\n    return\n"
                'await self.send_json({"hello": user.username})',
                "accepted, then closed"),
        Planted("refuses but does not return",
                "if not user.is_authenticated:\n    await self.close(code=4401)\n"
                'await self.accept()\nawait self.send_json({"hello": user.username})',
                "kept going"),
        Planted("calls is_authenticated like a method",
                "if not user.is_authenticated():\n    await self.close(code=4401)\n    return\n"
                'await self.accept()\nawait self.send_json({"hello": user.username})',
                "not a method"),
    ],
    "production-stack": [
        Planted("the document's router: no http route",
                'return ProtocolTypeRouter({\n'
                '    "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_routes))),\n'
                "})",
                "every page of the site answers 500"),
        Planted("no Origin check",
                'return ProtocolTypeRouter({\n    "http": django_asgi_app,\n'
                '    "websocket": AuthMiddlewareStack(URLRouter(websocket_routes)),\n})',
                "cross-site WebSocket hijacking"),
        Planted("no session user",
                'return ProtocolTypeRouter({\n    "http": django_asgi_app,\n'
                '    "websocket": AllowedHostsOriginValidator(URLRouter(websocket_routes)),\n})',
                "AuthMiddlewareStack"),
    ],
}
