"""The test kit (paintbrush.testing, docs/testing.md): capture_events in TestCase and
TransactionTestCase, and sockets signed in with a valid Origin."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

from asgiref.sync import sync_to_async
from channels.auth import AuthMiddlewareStack
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import SimpleTestCase, TestCase, TransactionTestCase, override_settings

from paintbrush import broadcast
from paintbrush.groups import access_group, document_group
from paintbrush.origins import SameOriginValidator
from paintbrush.testing import (
    DocumentReplica,
    capture_events,
    communicator,
    connect,
    receive,
    session_cookie,
    subscribe,
)
from project.demo.models import Order, Product, Todo

IN_MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

User = get_user_model()

ROOT = Path(__file__).resolve().parent.parent


def json_body(**kwargs: Any) -> dict[str, Any]:
    return {"content_type": "application/json", **kwargs}


class CaptureInTestCaseTests(TestCase):
    def test_a_create_is_captured_as_subscribers_receive_it(self) -> None:
        with capture_events() as events:
            response = self.client.post("/api/todos", {"title": "milk"}, **json_body())
        self.assertEqual(response.status_code, 201)
        self.assertEqual(events, [{"resource": "todos", "action": "create", "item": response.json()}])

    def test_an_update_carries_the_changed_fields_and_the_new_version(self) -> None:
        todo = Todo.objects.create(title="milk")
        with capture_events() as events:
            self.client.put(f"/api/todos/{todo.pk}", {"done": True}, **json_body())
        self.assertEqual(
            events,
            [{"resource": "todos", "action": "update", "id": str(todo.pk), "fields": {"done": True}, "version": 2}],
        )

    def test_writes_of_the_shell_and_the_orm_are_captured_too(self) -> None:
        todo = Todo.objects.create(title="milk")
        with capture_events() as events:
            todo.title = "oat milk"
            todo.save()
            todo.delete()
        self.assertEqual(events.actions(), ["update", "delete"])

    def test_a_rolled_back_block_captures_nothing(self) -> None:
        with capture_events() as events, self.assertRaises(RuntimeError), transaction.atomic():
            Todo.objects.create(title="never")
            raise RuntimeError("abort")
        self.assertEqual((events, events.messages), ([], []))

    def test_a_block_that_ends_inside_its_own_transaction_has_published_nothing_yet(self) -> None:
        with transaction.atomic():
            with capture_events() as events:
                Todo.objects.create(title="later")
            self.assertEqual(events, [])

    def test_each_callback_runs_once_and_later_blocks_start_empty(self) -> None:
        with capture_events() as outer:
            Todo.objects.create(title="one")
            with capture_events() as inner:
                Todo.objects.create(title="two")
        self.assertEqual([e["item"]["title"] for e in inner], ["two"])
        # Each block's writes count as committed when it ends: the inner one's first.
        self.assertEqual([e["item"]["title"] for e in outer], ["two", "one"])
        with self.captureOnCommitCallbacks() as callbacks, capture_events() as after:
            pass
        self.assertEqual((callbacks, after), ([], []))

    def test_other_on_commit_callbacks_run_too_as_a_commit_runs_them(self) -> None:
        calls: list[str] = []

        def fail() -> None:
            raise ValueError("robust: logged, not raised")

        with self.assertLogs("django.db.backends.base", "ERROR"), capture_events():
            transaction.on_commit(lambda: calls.append("mine"))
            transaction.on_commit(fail, robust=True)
            transaction.on_commit(lambda: transaction.on_commit(lambda: calls.append("added by a callback")))
        self.assertEqual(calls, ["mine", "added by a callback"])

    def test_a_save_that_changes_nothing_publishes_nothing(self) -> None:
        todo = Todo.objects.create(title="milk")
        with capture_events() as events:
            todo.save()
        self.assertEqual(events.messages, [])

    def test_of_actions_and_keys_say_which_resource_what_and_to_whom(self) -> None:
        alice = User.objects.create_user("alice")
        bob = User.objects.create_user("bob")
        product = Product.objects.create(name="Brush", price=Decimal("9.99"))
        order = Order.objects.create(user=alice, product=product)
        with capture_events() as events:
            Todo.objects.create(title="milk")
            order.user = bob  # handed to bob: alice's view loses it, bob's gains it
            order.save()
        orders = events.of("orders")
        self.assertEqual(events.of("todos").actions(), ["create"])
        self.assertEqual(orders.actions(), ["update", "delete", "create"])
        self.assertEqual([events.keys(e) for e in orders], [["all"], [f"user.{alice.pk}"], [f"user.{bob.pk}"]])
        self.assertEqual(events.keys(events.of("todos")[0]), ["all"])
        with self.assertRaises(ValueError):
            events.keys(dict(orders[0]))

    def test_document_and_access_notices_are_listed_apart_from_events(self) -> None:
        alice = User.objects.create_user("alice")
        product = Product.objects.create(name="Brush", price=Decimal("9.99"))
        with capture_events() as events:
            Order.objects.create(user=alice, product=product)
        self.assertEqual(events.actions(), ["create"])
        self.assertEqual(events.notices, [document_group("admin"), document_group("customer", alice.pk)])
        with capture_events() as events:
            alice.is_staff = True
            alice.save()
        self.assertEqual(events, [])
        self.assertIn(access_group(alice.pk), events.notices)

    def test_messages_still_go_to_the_channel_layer(self) -> None:
        with mock.patch.object(broadcast, "send") as send, capture_events() as events:
            Todo.objects.create(title="milk")
        send.assert_called_once_with(events.messages)

    async def test_async_with_in_an_async_test(self) -> None:
        async with capture_events() as events:
            response = await self.async_client.post("/api/todos", {"title": "milk"}, content_type="application/json")
        self.assertEqual(events, [{"resource": "todos", "action": "create", "item": response.json()}])

    async def test_plain_with_in_async_code_is_refused(self) -> None:
        with self.assertRaisesMessage(RuntimeError, "async with capture_events()"), capture_events():
            pass


# -- the examples of docs/testing.md, as they are written there -------------------------------


class TodoEventTests(TestCase):
    def test_marking_a_todo_done_publishes_the_change(self) -> None:
        todo = Todo.objects.create(title="milk")
        with capture_events() as events:
            self.client.patch(f"/api/todos/{todo.pk}", {"done": True}, content_type="application/json")
        self.assertEqual(
            events,
            [{"resource": "todos", "action": "update", "id": str(todo.pk), "fields": {"done": True}, "version": 2}],
        )


class OrderEventTests(TestCase):
    def test_an_order_handed_to_bob_leaves_alices_view_and_enters_his(self) -> None:
        alice, bob = User.objects.create_user("alice"), User.objects.create_user("bob")
        order = Order.objects.create(user=alice, product=Product.objects.create(name="Brush", price=1))
        with capture_events() as events:
            order.user = bob
            order.save()
        self.assertEqual(events.of("orders").actions(), ["update", "delete", "create"])
        self.assertEqual([events.keys(e) for e in events], [["all"], [f"user.{alice.pk}"], [f"user.{bob.pk}"]])
        self.assertIn(document_group("customer", bob.pk), events.notices)


@override_settings(CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}})
class TodoSocketTests(TransactionTestCase):
    async def test_a_new_todo_reaches_a_subscribed_socket(self) -> None:
        alice = await sync_to_async(get_user_model().objects.create_user)("alice")
        ws = await connect("/ws", user=alice)
        self.assertEqual(await subscribe(ws, "todos", snapshot=True), [])
        todo = await sync_to_async(Todo.objects.create)(title="milk")
        event = await receive(ws)
        self.assertEqual((event["action"], event["item"]["id"]), ("create", str(todo.pk)))
        await ws.disconnect()


@override_settings(CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}})
class ShopDocumentTests(TransactionTestCase):
    async def test_patches_keep_alices_document_equal_to_get_api_doc(self) -> None:
        alice = await sync_to_async(get_user_model().objects.create_user)("alice")
        brush = await sync_to_async(Product.objects.create)(name="Brush", price=1)
        ws = await connect("/ws/doc?patch=1", user=alice)
        replica = DocumentReplica()
        replica.take(await receive(ws))  # the whole document, with "rev"
        await sync_to_async(Order.objects.create)(user=alice, product=brush)
        replica.take(await receive(ws))  # a patch: fails on a revision gap
        self.assertEqual((replica.wholes, replica.patches), (1, 1))
        self.assertEqual(replica.doc, await self.api_doc(alice))
        await ws.disconnect()

    async def api_doc(self, user: Any) -> Any:
        await self.async_client.aforce_login(user)
        return (await self.async_client.get("/api/doc")).json()


class DocsTests(SimpleTestCase):
    def test_the_examples_of_docs_testing_md_are_the_ones_tested_here(self) -> None:
        # Each paragraph of each example, imports aside, is a run of lines of this module.
        here = [line.strip() for line in Path(__file__).read_text().splitlines()]
        docs = (ROOT / "docs" / "testing.md").read_text()
        blocks = re.findall(r"^```python\n(.*?)^```", docs, flags=re.M | re.S)
        self.assertGreaterEqual(len(blocks), 5)
        for block in blocks:
            for paragraph in block.split("\n\n"):
                lines = [line.strip() for line in paragraph.splitlines() if line.strip()]
                if not lines or all(line.startswith(("from ", "import ")) for line in lines):
                    continue
                with self.subTest(paragraph=lines[0]):
                    self.assertTrue(any(here[i : i + len(lines)] == lines for i in range(len(here))), "\n".join(lines))


@override_settings(CHANNEL_LAYERS=IN_MEMORY)
class CaptureWithCommitsTests(TransactionTestCase):
    async def test_what_commits_in_the_block_is_captured_and_delivered(self) -> None:
        ws = await connect()
        await subscribe(ws, "todos")
        async with capture_events() as events:
            await sync_to_async(Todo.objects.create)(title="milk")
        self.assertEqual(events, [await receive(ws)])
        await ws.disconnect()

    def test_only_what_commits_within_the_block_is_captured(self) -> None:
        with transaction.atomic():
            with capture_events() as inside:
                Todo.objects.create(title="not yet")
            with capture_events() as at_commit:
                pass
        self.assertEqual((inside, at_commit), ([], []))
        with capture_events() as events, transaction.atomic():
            Todo.objects.create(title="a")
            Todo.objects.create(title="b")
        self.assertEqual([e["item"]["title"] for e in events], ["a", "b"])


@override_settings(CHANNEL_LAYERS=IN_MEMORY)
class SocketTests(TransactionTestCase):
    async def test_connect_without_a_user_is_anonymous(self) -> None:
        ws = await connect()
        await subscribe(ws, "todos")
        await ws.send_json_to({"action": "opendoc", "resource": "products"})  # needs a user
        self.assertEqual((await receive(ws))["error"], "forbidden")
        await ws.disconnect()

    async def test_connect_with_a_user_is_signed_in(self) -> None:
        alice = await sync_to_async(User.objects.create_user)("alice")
        ws = await connect(user=alice)
        self.assertEqual(await subscribe(ws, "products", snapshot=True), [])
        await ws.disconnect()

    async def test_the_origin_is_one_allowed_hosts_accepts(self) -> None:
        ws = await communicator()
        self.assertEqual(dict(ws.scope["headers"])[b"origin"], b"http://localhost")  # the project's first host
        self.assertTrue((await ws.connect())[0])
        await ws.disconnect()
        for hosts, origin in (([".example.com"], b"http://example.com"), (["*"], b"http://testserver")):
            with self.subTest(hosts=hosts), override_settings(ALLOWED_HOSTS=hosts):
                self.assertEqual(dict((await communicator()).scope["headers"])[b"origin"], origin)

    async def test_a_refused_handshake_fails_connect_and_shows_in_communicator(self) -> None:
        with self.assertRaisesMessage(AssertionError, "the handshake to /ws was refused"):
            await connect(origin="http://evil.example")
        ws = await communicator("/ws/doc")  # signed out: no role document
        self.assertFalse((await ws.connect())[0])

    async def test_a_consumer_of_ones_own_is_reached_signed_in(self) -> None:
        class WhoAmI(AsyncJsonWebsocketConsumer):
            async def connect(self) -> None:
                await self.accept()
                await self.send_json({"user": self.scope["user"].get_username()})

        application = SameOriginValidator(AuthMiddlewareStack(WhoAmI.as_asgi()))
        alice = await sync_to_async(User.objects.create_user)("alice")
        ws = await connect("/whoami", user=alice, application=application)
        self.assertEqual(await receive(ws), {"user": "alice"})
        await ws.disconnect()

    async def test_one_session_for_several_sockets(self) -> None:
        alice = await sync_to_async(User.objects.create_user)("alice")
        cookie = await session_cookie(alice)
        sockets = [await connect("/ws/doc", headers=[(b"cookie", cookie)]) for _ in range(2)]
        for ws in sockets:
            self.assertEqual((await receive(ws))["doc"]["role"], "customer")
            await ws.disconnect()

    @override_settings(PAINTBRUSH={"SNAPSHOT_FRAME_BYTES": 1024})
    async def test_subscribe_joins_a_snapshot_split_over_frames(self) -> None:
        await sync_to_async(Todo.objects.bulk_create)(Todo(title=f"{i:02} " + "x" * 100) for i in range(30))
        ws = await connect()
        items = await subscribe(ws, "todos", snapshot=True)
        self.assertEqual(items, (await self.async_client.get("/api/todos")).json())
        await ws.disconnect()

    async def test_nothing_stays_in_the_channel_layer_after_disconnect(self) -> None:
        alice = await sync_to_async(User.objects.create_user)("alice")
        ws = await connect(user=alice)
        await subscribe(ws, "todos")
        await ws.disconnect()
        self.assertEqual(get_channel_layer().groups, {})
