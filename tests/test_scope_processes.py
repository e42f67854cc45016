"""Scopes across server processes (docs/protocol.md, section 2b), against two
``scripts/serve`` processes on a real Redis: a room's messages written through one
process reach the sockets of that room on the other and no other room's; a member
removed through one process has her subscription on the other closed (``forbidden``),
and nothing of the room reaches her after that."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Origin

from project.demo.models import Membership, Room

from .servers import ServerProcess, http_call
from .test_faults import FaultTestCase, needs_redis, new_prefix

User = get_user_model()

#: The protocol's bound for a subscription's close after its user loses access, with
#: room for a loaded machine's two processes and Redis.
CLOSE_SECONDS = 5.0


def session_for(user: Any) -> str:
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    assert session.session_key is not None
    return session.session_key


@needs_redis
class ScopesAcrossProcessesTests(FaultTestCase):
    async def test_rooms_stay_apart_and_a_removed_member_is_closed_across_processes(self) -> None:
        alice = await asyncio.to_thread(User.objects.create_user, "alice")
        bob = await asyncio.to_thread(User.objects.create_user, "bob")
        a = await asyncio.to_thread(Room.objects.create, name="a", owner=bob)
        b = await asyncio.to_thread(Room.objects.create, name="b", owner=bob)
        secret = await asyncio.to_thread(Room.objects.create, name="secret", owner=bob, private=True)
        await asyncio.to_thread(Membership.objects.create, room=secret, user=bob)
        membership = await asyncio.to_thread(Membership.objects.create, room=secret, user=alice)
        alice_session, bob_session = await asyncio.to_thread(lambda: (session_for(alice), session_for(bob)))

        redis = await asyncio.to_thread(self.redis)
        prefix = new_prefix()
        watching, writing = (ServerProcess(redis_url=redis.url, prefix=prefix) for _ in range(2))
        for server in (watching, writing):
            self.addCleanup(server.close)
        await asyncio.gather(asyncio.to_thread(watching.start), asyncio.to_thread(writing.start))
        self.servers += [watching, writing]

        csrf = secrets.token_hex(16)

        async def post(room: Room, text: str) -> int:
            return await asyncio.to_thread(as_bob, "POST", "/api/messages", {"room": room.pk, "text": text})

        def as_bob(method: str, path: str, body: Any = None) -> int:
            headers = {"Cookie": f"sessionid={bob_session}; csrftoken={csrf}", "X-CSRFToken": csrf}
            status, _, _ = http_call(method, writing.url(path), body, headers)
            return status

        async with connect(
            watching.ws_url, origin=Origin(watching.origin), additional_headers={"Cookie": f"sessionid={alice_session}"}
        ) as ws:
            for room in (a, secret):
                await ws.send(json.dumps({"action": "opendoc", "resource": "messages", "where": {"room": room.pk}}))
                self.assertEqual((await next_frame(ws))["type"], "opened")
            # Written through the other process: room b's message must not come, a's must.
            self.assertEqual(await post(b, "b"), 201)
            self.assertEqual(await post(a, "a"), 201)
            first = await next_frame(ws)
            self.assertEqual((first["item"]["text"], first["where"]), ("a", {"room": a.pk}))
            # Removed through the other process: closed, then nothing of the room.
            loop = asyncio.get_running_loop()
            removed = loop.time()
            self.assertEqual(await asyncio.to_thread(as_bob, "DELETE", f"/api/memberships/{membership.pk}"), 204)
            closed = await next_frame(ws, timeout=CLOSE_SECONDS)
            close_s = loop.time() - removed
            self.assertEqual(
                closed, {"type": "closed", "resource": "messages", "where": {"room": secret.pk}, "reason": "forbidden"}
            )
            self.assertEqual(
                await asyncio.to_thread(as_bob, "POST", "/api/messages", {"room": secret.pk, "text": "s"}), 201
            )
            self.assertEqual(
                await asyncio.to_thread(as_bob, "POST", "/api/messages", {"room": a.pk, "text": "a2"}), 201
            )
            # One process wrote both, in this order, to one hub channel: "a2" comes after
            # anything of the secret room would have.
            after = await next_frame(ws)
            self.assertEqual((after["item"]["text"], after["where"]), ("a2", {"room": a.pk}))
        self.figures.update(closed_after_s=round(close_s, 3))


async def next_frame(ws: ClientConnection, timeout: float = 10.0) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return frame
