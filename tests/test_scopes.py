"""Scoped subscriptions (paintbrush.scopes, docs/protocol.md section 2b): a socket holds
the rows of one room, not the table; frames carry their where; rows moving between
scopes arrive as delete and create; windows; the same filter over REST."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import TestCase, TransactionTestCase, override_settings

from paintbrush.testing import capture_events, connect, receive
from project.demo.models import Membership, Message, Room, Todo

from .utils import IN_MEMORY

User = get_user_model()


async def opendoc(ws: WebsocketCommunicator, resource: str, **options: Any) -> dict[str, Any]:
    await ws.send_json_to({"action": "opendoc", "resource": resource, **options})
    answer: dict[str, Any] = await receive(ws)
    return answer


@override_settings(CHANNEL_LAYERS=IN_MEMORY)
class ScopedSocketTests(TransactionTestCase):
    def setUp(self) -> None:
        self.alice = User.objects.create_user("alice")
        self.bob = User.objects.create_user("bob")
        self.a = Room.objects.create(name="a", owner=self.bob)
        self.b = Room.objects.create(name="b", owner=self.bob)
        self.secret = Room.objects.create(name="secret", owner=self.bob, private=True)
        Membership.objects.create(room=self.secret, user=self.bob)

    def post(self, room: Room, text: str, user: Any = None) -> Message:
        return Message.objects.create(room=room, user=user or self.bob, text=text)

    async def test_a_socket_receives_its_room_only_and_frames_carry_the_where(self) -> None:
        ws = await connect(user=self.alice)
        opened = await opendoc(ws, "messages", where={"room": self.a.pk})
        self.assertEqual(opened, {"type": "opened", "resource": "messages", "where": {"room": self.a.pk}})
        await sync_to_async(self.post)(self.b, "for b")  # another room: nothing arrives
        await sync_to_async(self.post)(self.a, "for a")
        event = await receive(ws)
        self.assertEqual(
            (event["action"], event["item"]["text"], event["where"]), ("create", "for a", {"room": self.a.pk})
        )
        self.assertTrue(await ws.receive_nothing(timeout=0.2))
        await ws.disconnect()

    async def test_one_socket_holds_two_rooms_and_closes_one(self) -> None:
        ws = await connect(user=self.alice)
        await opendoc(ws, "messages", where={"room": self.a.pk})
        await opendoc(ws, "messages", where={"room": self.b.pk})
        await sync_to_async(self.post)(self.b, "b1")
        self.assertEqual((await receive(ws))["where"], {"room": self.b.pk})
        closed = await ws.send_json_to({"action": "closedoc", "resource": "messages", "where": {"room": self.b.pk}})
        self.assertIsNone(closed)
        self.assertEqual(await receive(ws), {"type": "closed", "resource": "messages", "where": {"room": self.b.pk}})
        await sync_to_async(self.post)(self.b, "b2")
        await sync_to_async(self.post)(self.a, "a1")
        event = await receive(ws)
        self.assertEqual((event["item"]["text"], event["where"]), ("a1", {"room": self.a.pk}))
        await ws.disconnect()

    async def test_a_where_the_resource_does_not_accept_is_bad_where_and_opens_nothing(self) -> None:
        ws = await connect(user=self.alice)
        options: dict[str, Any]
        for options in (
            {},  # messages require a room
            {"where": {"title": "x"}},  # not declared
            {"where": {"room": str(self.a.pk)}},  # a string, where REST renders an int
            {"where": {"room": True}},
            {"where": {}},
            {"where": {"room": self.a.pk}, "snapshot": True, "last": 0},
            {"where": {"room": self.a.pk}, "snapshot": True, "last": 1001},
        ):
            with self.subTest(options=options):
                answer = await opendoc(ws, "messages", **options)
                self.assertEqual((answer["type"], answer["error"]), ("error", "bad_where"), answer)
        await sync_to_async(self.post)(self.a, "unseen")
        self.assertTrue(await ws.receive_nothing(timeout=0.2))
        await ws.disconnect()

    async def test_a_private_room_is_forbidden_and_indistinguishable_from_none(self) -> None:
        ws = await connect(user=self.alice)
        private = await opendoc(ws, "messages", where={"room": self.secret.pk})
        missing = await opendoc(ws, "messages", where={"room": 999_999})
        self.assertEqual((private["error"], missing["error"]), ("forbidden", "forbidden"))
        self.assertEqual(private["message"], missing["message"])
        await sync_to_async(self.post)(self.secret, "members only")
        self.assertTrue(await ws.receive_nothing(timeout=0.2))
        member = await connect(user=self.bob)
        self.assertEqual((await opendoc(member, "messages", where={"room": self.secret.pk}))["type"], "opened")
        await ws.disconnect()
        await member.disconnect()

    async def test_a_scope_hook_that_raises_answers_an_error_and_logs_the_hook(self) -> None:
        from unittest import mock

        from project.demo.live import MessageResource

        ws = await connect(user=self.alice)
        with (
            mock.patch.object(MessageResource, "can_read_scope", side_effect=RuntimeError("rooms table gone")),
            self.assertLogs("paintbrush", "ERROR") as logs,
        ):
            answer = await opendoc(ws, "messages", where={"room": self.a.pk})
        self.assertEqual((answer["type"], answer["error"]), ("error", "forbidden"))
        self.assertIn("MessageResource.can_read_scope", answer["message"])
        self.assertIn("MessageResource.can_read_scope raised", logs.output[0])
        # The socket goes on.
        self.assertEqual((await opendoc(ws, "messages", where={"room": self.a.pk}))["type"], "opened")
        await ws.disconnect()

    async def test_subscription_keys_may_use_the_orm_and_a_failing_one_is_named(self) -> None:
        # It used to run on the event loop: an ORM lookup raised SynchronousOnlyOperation
        # and the socket went silent.
        from unittest import mock

        from project.demo.live import RoomResource

        def rooms_of(resource: Any, user: Any) -> list[str]:
            return [f"user.{pk}" for pk in Membership.objects.filter(user=user).values_list("user_id", flat=True)]

        ws = await connect(user=self.bob)
        with mock.patch.object(RoomResource, "subscription_keys", rooms_of):
            self.assertEqual((await opendoc(ws, "rooms"))["type"], "opened")
        with (
            mock.patch.object(RoomResource, "subscription_keys", side_effect=RuntimeError("boom")),
            self.assertLogs("paintbrush", "ERROR") as logs,
        ):
            await ws.send_json_to({"action": "closedoc", "resource": "rooms"})
            self.assertEqual((await receive(ws))["type"], "closed")
            answer = await opendoc(ws, "rooms")
        self.assertEqual((answer["error"], "RoomResource.subscription_keys" in answer["message"]), ("forbidden", True))
        self.assertIn("RoomResource.subscription_keys raised", logs.output[0])
        await ws.disconnect()

    async def test_the_last_n_of_a_room_in_order_and_whether_that_is_all(self) -> None:
        for i in range(60):
            await sync_to_async(self.post)(self.a, f"m{i:02d}")
        ws = await connect(user=self.alice)
        await opendoc(ws, "messages", where={"room": self.a.pk}, snapshot=True, last=50)
        window = await receive(ws)
        self.assertEqual([m["text"] for m in window["items"]], [f"m{i:02d}" for i in range(10, 60)])
        self.assertEqual((window["last"], window.get("complete"), window["where"]), (50, None, {"room": self.a.pk}))
        await opendoc(ws, "messages", where={"room": self.b.pk}, snapshot=True, last=50)
        whole = await receive(ws)
        self.assertEqual((whole["items"], whole["complete"]), ([], True))
        await ws.disconnect()

    async def test_a_todo_checked_off_leaves_the_open_scope_and_comes_back(self) -> None:
        todo = await sync_to_async(Todo.objects.create)(title="t")
        ws = await connect()
        await opendoc(ws, "todos", where={"done": False})
        todo.done = True
        await sync_to_async(todo.save)()
        left = await receive(ws)
        self.assertEqual((left["action"], left["id"], left["where"]), ("delete", str(todo.pk), {"done": False}))
        todo.done = False
        await sync_to_async(todo.save)()
        back = await receive(ws)
        self.assertEqual(
            (back["action"], back["item"]["id"], back["item"]["version"]),
            ("create", str(todo.pk), 3),
        )
        await ws.disconnect()

    async def test_a_member_removed_while_watching_sees_the_room_close_and_nothing_more(self) -> None:
        membership = await sync_to_async(Membership.objects.create)(room=self.secret, user=self.alice)
        ws = await connect(user=self.alice)
        await opendoc(ws, "messages", where={"room": self.secret.pk})
        await opendoc(ws, "messages", where={"room": self.a.pk})
        await sync_to_async(self.post)(self.secret, "while a member")
        self.assertEqual((await receive(ws))["item"]["text"], "while a member")
        await sync_to_async(membership.delete)()
        await sync_to_async(self.post)(self.secret, "after she left")
        closed = await receive(ws)
        self.assertEqual(
            closed, {"type": "closed", "resource": "messages", "where": {"room": self.secret.pk}, "reason": "forbidden"}
        )
        await sync_to_async(self.post)(self.secret, "later still")
        await sync_to_async(self.post)(self.a, "the public room goes on")
        self.assertEqual((await receive(ws))["item"]["text"], "the public room goes on")
        self.assertTrue(await ws.receive_nothing(timeout=0.2))
        # Invited again: she may open it again.
        await sync_to_async(Membership.objects.create)(room=self.secret, user=self.alice)
        self.assertEqual((await opendoc(ws, "messages", where={"room": self.secret.pk}))["type"], "opened")
        await ws.disconnect()

    async def test_a_membership_that_keeps_access_keeps_the_subscription(self) -> None:
        carol = await sync_to_async(User.objects.create_user)("carol")
        ws = await connect(user=self.bob)
        await opendoc(ws, "messages", where={"room": self.secret.pk})
        await sync_to_async(Membership.objects.create)(room=self.secret, user=carol)  # not bob's access
        membership = await sync_to_async(Membership.objects.get)(room=self.secret, user=self.bob)
        membership.room = self.secret  # a save that changes nothing of bob's access
        await sync_to_async(membership.save)()
        await sync_to_async(self.post)(self.secret, "still here")
        self.assertEqual((await receive(ws))["item"]["text"], "still here")
        await ws.disconnect()

    def test_a_write_is_sent_once_per_scope_whatever_the_number_of_sockets(self) -> None:
        with capture_events() as events:
            self.post(self.a, "one message")
        groups = [group for group, _ in events.messages]
        self.assertEqual(len(groups), 1, groups)  # the room's scope: no unscoped copy


@override_settings(CHANNEL_LAYERS=IN_MEMORY)
class ScopedRestTests(TestCase):
    def setUp(self) -> None:
        self.alice = User.objects.create_user("alice")
        self.a = Room.objects.create(name="a", owner=self.alice)
        self.b = Room.objects.create(name="b", owner=self.alice)
        self.messages = [Message.objects.create(room=self.a, user=self.alice, text=f"m{i}") for i in range(8)]
        Message.objects.create(room=self.b, user=self.alice, text="elsewhere")
        self.client.force_login(self.alice)

    def texts(self, query: str) -> list[str]:
        response = self.client.get(f"/api/messages?{query}")
        self.assertEqual(response.status_code, 200, response.content)
        return [m["text"] for m in response.json()]

    def test_the_filter_and_the_windows_of_rest(self) -> None:
        self.assertEqual(self.texts(f"room={self.a.pk}"), [f"m{i}" for i in range(8)])
        self.assertEqual(self.texts(f"room={self.a.pk}&last=3"), ["m5", "m6", "m7"])
        before = self.messages[5].pk
        self.assertEqual(self.texts(f"room={self.a.pk}&last=3&before={before}"), ["m2", "m3", "m4"])

    def test_a_bad_window_is_400(self) -> None:
        for query in ("last=0", "last=1001", "last=x", "before=999999", f"room={self.a.pk}&before=nope"):
            with self.subTest(query=query):
                self.assertEqual(self.client.get(f"/api/messages?{query}").status_code, 400)

    def test_the_window_reads_the_room_by_its_index(self) -> None:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            self.texts(f"room={self.a.pk}&last=50")
        listing = [q["sql"] for q in queries.captured_queries if "demo_message" in q["sql"]]
        self.assertEqual(len(listing), 1, listing)
        self.assertIn("LIMIT 50", listing[0])

    def test_a_private_room_makes_its_owner_a_member_and_hides_from_others(self) -> None:
        response = self.client.post("/api/rooms", {"name": "hideout", "private": True}, content_type="application/json")
        self.assertEqual(response.status_code, 201, response.content)
        room = Room.objects.get(name="hideout")
        self.assertEqual(
            (room.owner, list(room.memberships.values_list("user__username", flat=True))), (self.alice, ["alice"])
        )
        bob = User.objects.create_user("bob")
        self.client.force_login(bob)
        self.assertNotIn("hideout", [r["name"] for r in self.client.get("/api/rooms").json()])
        posted = self.client.post("/api/messages", {"room": room.pk, "text": "hi"}, content_type="application/json")
        self.assertEqual(posted.status_code, 400)  # as for a room that does not exist
        self.assertEqual(self.client.get(f"/api/messages?room={room.pk}").json(), [])
        # A private room and none at all answer alike: 200 and nothing.
        for query in (f"room={room.pk}", "room=999999"):
            response = self.client.get(f"/api/messages?{query}")
            self.assertEqual((response.status_code, response.json()), (200, []), query)

    def invite(self, room: Room, username: str) -> Any:
        return self.client.post(
            "/api/memberships", {"room": room.pk, "username": username}, content_type="application/json"
        )

    def test_the_owner_invites_by_user_name_and_the_invited_reads_the_room(self) -> None:
        room = Room.objects.create(name="club", owner=self.alice, private=True)
        Membership.objects.create(room=room, user=self.alice)
        bob = User.objects.create_user("bob")
        unknown = self.invite(room, "nobody")
        self.assertEqual((unknown.status_code, unknown.json()), (400, {"username": ["No user of that name."]}))
        invited = self.invite(room, "bob")
        self.assertEqual((invited.status_code, invited.json()["user"]), (201, bob.pk))
        self.assertEqual(self.invite(room, "bob").json(), {"user": ["Already a member of this room."]})
        Message.objects.create(room=room, user=self.alice, text="welcome, bob")
        self.client.force_login(bob)
        texts = [m["text"] for m in self.client.get(f"/api/messages?room={room.pk}").json()]
        self.assertEqual(texts, ["welcome, bob"])
        # bob is a member, not the owner: he may not invite.
        self.assertEqual(self.invite(room, "carol").status_code, 403)
