"""The /ws consumer (paintbrush.consumers): the error table of docs/protocol.md, section 2,
the handshake checks, subscriptions and their limits, and authorization by the
resource's own DRF permissions. What every socket does whatever it carries (the
per-client cap, one close) is in test_sockets; how a snapshot is split, in test_frames."""

from __future__ import annotations

from typing import Any
from unittest import mock

from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import TransactionTestCase, override_settings

from paintbrush import consumers
from paintbrush.testing import connect, receive, subscribe
from project.asgi import application
from project.demo.models import Todo

from .utils import IN_MEMORY


@override_settings(CHANNEL_LAYERS=IN_MEMORY)
class ErrorTests(TransactionTestCase):
    async def assert_error(self, ws: WebsocketCommunicator, code: str, request: Any = "absent") -> None:
        frame = await receive(ws)
        self.assertEqual((frame["type"], frame["error"]), ("error", code), frame)
        self.assertIsInstance(frame["message"], str)
        self.assertTrue(frame["message"])
        if request == "absent":
            self.assertNotIn("request", frame)
        else:
            self.assertEqual(frame["request"], request)
        # The socket stays open and usable after every error.
        await subscribe(ws, "todos")

    async def test_a_frame_that_is_not_json_is_bad_json(self) -> None:
        ws = await connect()
        await ws.send_to(text_data="{nope")
        await self.assert_error(ws, "bad_json")
        await ws.disconnect()

    async def test_a_binary_frame_is_bad_json(self) -> None:
        ws = await connect()
        await ws.send_to(bytes_data=b'{"action": "opendoc", "resource": "todos"}')
        await self.assert_error(ws, "bad_json")
        await ws.disconnect()

    async def test_json_that_is_not_an_object_is_bad_message(self) -> None:
        ws = await connect()
        await ws.send_json_to(["opendoc", "todos"])
        await self.assert_error(ws, "bad_message", ["opendoc", "todos"])
        await ws.disconnect()

    async def test_a_missing_or_non_string_action_is_bad_message(self) -> None:
        ws = await connect()
        for message in ({"resource": "todos"}, {"action": 3, "resource": "todos"}):
            await ws.send_json_to(message)
            await self.assert_error(ws, "bad_message", message)
        await ws.disconnect()

    async def test_a_missing_resource_is_bad_message(self) -> None:
        ws = await connect()
        for message in ({"action": "opendoc"}, {"action": "closedoc", "resource": ["todos"]}):
            await ws.send_json_to(message)
            await self.assert_error(ws, "bad_message", message)
        await ws.disconnect()

    async def test_an_unknown_action_is_unknown_action(self) -> None:
        ws = await connect()
        for action in ("subscribe", "_unsubscribe", "receive", "__init__"):
            message = {"action": action, "resource": "todos"}
            await ws.send_json_to(message)
            await self.assert_error(ws, "unknown_action", message)
        await ws.disconnect()

    async def test_an_unknown_or_rest_only_resource_is_unknown_resource(self) -> None:
        ws = await connect()
        for name in ("nothing", "notes"):
            message = {"action": "opendoc", "resource": name}
            await ws.send_json_to(message)
            await self.assert_error(ws, "unknown_resource", message)
        await ws.disconnect()

    async def test_a_resource_the_user_may_not_read_is_forbidden(self) -> None:
        ws = await connect()  # signed out; products need a signed-in user
        message = {"action": "opendoc", "resource": "products"}
        await ws.send_json_to(message)
        await self.assert_error(ws, "forbidden", message)
        await ws.disconnect()

    @override_settings(PAINTBRUSH={"MAX_FRAME_BYTES": 100})
    async def test_a_frame_over_the_limit_is_too_large(self) -> None:
        ws = await connect()
        await ws.send_json_to({"action": "opendoc", "resource": "todos", "pad": "x" * 200})
        await self.assert_error(ws, "too_large")
        await ws.disconnect()

    async def test_the_default_limit_is_64_kib(self) -> None:
        ws = await connect()
        await ws.send_to(text_data='{"pad": "' + "x" * (64 * 1024) + '"}')
        await self.assert_error(ws, "too_large")
        await ws.disconnect()

    @override_settings(PAINTBRUSH={"MAX_ERRORS_PER_MINUTE": 3})
    async def test_a_client_that_floods_errors_is_closed(self) -> None:
        ws = await connect()
        for _ in range(3):
            await ws.send_to(text_data="{nope")
            self.assertEqual((await receive(ws))["error"], "bad_json")
        await ws.send_to(text_data="{nope")
        # WebsocketCommunicator, like Daphne, states no ASGI spec version: 1008 goes out
        # as 4008, which Daphne sends (it refuses 1008 and leaves the socket open).
        self.assertEqual(await ws.receive_output(timeout=5), {"type": "websocket.close", "code": 4008})
        await ws.disconnect()


@override_settings(CHANNEL_LAYERS=IN_MEMORY)
class HandshakeTests(TransactionTestCase):
    async def refused(self, headers: list[tuple[bytes, bytes]]) -> bool:
        ws = WebsocketCommunicator(application, "/ws", headers=headers)
        connected, _ = await ws.connect()
        if connected:
            await ws.disconnect()
        return not connected

    async def test_a_foreign_origin_is_refused(self) -> None:
        self.assertTrue(await self.refused([(b"host", b"localhost"), (b"origin", b"http://evil.example")]))

    async def test_a_missing_origin_is_refused(self) -> None:
        self.assertTrue(await self.refused([(b"host", b"localhost")]))

    async def test_an_allowed_origin_is_accepted(self) -> None:
        self.assertFalse(await self.refused([(b"host", b"localhost"), (b"origin", b"http://localhost")]))


@override_settings(CHANNEL_LAYERS=IN_MEMORY)
class SubscriptionTests(TransactionTestCase):
    async def test_a_signed_in_user_may_subscribe_to_what_they_may_list(self) -> None:
        user = await sync_to_async(get_user_model().objects.create_user)("carol", password="pw")
        ws = await connect(user=user)
        self.assertEqual(await subscribe(ws, "products", snapshot=True), [])
        await ws.disconnect()

    async def test_opendoc_twice_is_answered_twice_and_subscribes_once(self) -> None:
        ws = await connect()
        await subscribe(ws, "todos")
        await subscribe(ws, "todos", snapshot=True)
        todo = await sync_to_async(Todo.objects.create)(title="once")
        self.assertEqual((await receive(ws))["item"]["id"], str(todo.pk))
        await ws.send_json_to({"action": "closedoc", "resource": "todos"})
        # Exactly one create was delivered: the next frame is the closedoc answer.
        self.assertEqual(await receive(ws), {"type": "closed", "resource": "todos"})
        await ws.disconnect()

    async def test_closedoc_of_a_resource_not_opened_is_answered_closed(self) -> None:
        ws = await connect()
        await ws.send_json_to({"action": "closedoc", "resource": "todos"})
        self.assertEqual(await receive(ws), {"type": "closed", "resource": "todos"})
        await ws.disconnect()

    async def test_after_a_channel_layer_outage_each_subscription_is_told_to_resync_once(self) -> None:
        from channels.layers import get_channel_layer

        from paintbrush.hub import get_hub

        ws = await connect()
        await subscribe(ws, "todos")
        await subscribe(ws, "checklists")
        hub = get_hub(get_channel_layer())
        await hub._recover()  # what the hub does once a failing receive recovers
        await hub._recover()  # twice: still one resync each until answered
        frames = [await receive(ws), await receive(ws)]
        self.assertEqual(sorted(f["resource"] for f in frames), ["checklists", "todos"])
        self.assertEqual({f["type"] for f in frames}, {"resync"})
        self.assertTrue(await ws.receive_nothing(timeout=0.2))
        # The client answers with a snapshot; the next outage is told again.
        await subscribe(ws, "todos", snapshot=True)
        await hub._recover()
        self.assertEqual((await receive(ws))["resource"], "todos")
        await ws.disconnect()

    async def test_the_trailing_slash_of_the_socket_path_is_optional(self) -> None:
        ws = await connect("/ws/")
        await subscribe(ws, "todos")
        await ws.disconnect()


@override_settings(CHANNEL_LAYERS=IN_MEMORY)
class HostileFrameTests(TransactionTestCase):
    async def test_deep_nesting_and_nan_are_bad_json_and_the_socket_stays_open(self) -> None:
        ws = await connect()
        for frame in ("[" * 990 + "]" * 990, '{"action": "opendoc", "resource": NaN}', "[Infinity]"):
            await ws.send_to(text_data=frame)
            answer = await receive(ws)
            self.assertEqual(answer["error"], "bad_json", answer)
            self.assertNotIn("request", answer)
        await subscribe(ws, "todos")  # still open and working
        await ws.disconnect()


@override_settings(CHANNEL_LAYERS=IN_MEMORY)
class LimitTests(TransactionTestCase):
    @override_settings(CHANNEL_LAYERS=IN_MEMORY, PAINTBRUSH={"MAX_SUBSCRIPTIONS_PER_SOCKET": 1})
    async def test_subscriptions_past_the_per_socket_limit_are_limit_exceeded(self) -> None:
        ws = await connect()
        await subscribe(ws, "todos")
        await subscribe(ws, "todos")  # opening it again is not one more
        await ws.send_json_to({"action": "opendoc", "resource": "checklists"})
        self.assertEqual((await receive(ws))["error"], "limit_exceeded")
        await ws.disconnect()

    @override_settings(CHANNEL_LAYERS=IN_MEMORY, PAINTBRUSH={"SNAPSHOTS_PER_MINUTE": 2})
    @mock.patch.object(consumers, "_RATE_WINDOW", 1.0)
    async def test_snapshots_past_the_rate_are_rate_limited_and_resynced_later(self) -> None:
        ws = await connect()
        await subscribe(ws, "todos", snapshot=True)
        await subscribe(ws, "todos", snapshot=True)
        await ws.send_json_to({"action": "opendoc", "resource": "todos", "snapshot": True})
        error = await receive(ws)
        self.assertEqual(error["error"], "rate_limited")
        self.assertGreater(error["retry_after"], 0)
        # Once it may ask again, the open subscription is told to resync.
        self.assertEqual(await receive(ws), {"type": "resync", "resource": "todos", "reason": "snapshot rate limit"})
        await ws.disconnect()
