"""What every socket is (paintbrush.sockets): the per-client cap (4029), one close that
releases everything once, close codes as the server can send them (``close_code``), a
state that only moves forward, and ``refuse()`` refusing the handshake, counted."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.test import SimpleTestCase, TransactionTestCase, override_settings

from paintbrush import sockets
from paintbrush.sockets import POLICY_VIOLATION, PaintbrushSocket, SocketState, client_key, close_code
from paintbrush.testing import communicator, connect, receive, subscribe

from .utils import IN_MEMORY, metric


def bare_socket() -> tuple[PaintbrushSocket, list[tuple[dict[str, Any], SocketState]]]:
    """A socket outside any server, as Daphne would run it (no ASGI spec version
    stated), and what it sends, each message with the state the socket was in."""
    socket = PaintbrushSocket()
    socket.scope = {"type": "websocket", "path": "/ws", "client": ("192.0.2.7", 5000)}
    sent: list[tuple[dict[str, Any], SocketState]] = []

    async def base_send(message: dict[str, Any]) -> None:
        sent.append((message, socket.state))

    socket.base_send = base_send
    return socket, sent


class CloseCodeTests(SimpleTestCase):
    def test_without_a_stated_spec_version_1xxx_goes_out_as_4xxx(self) -> None:
        # Daphne and Channels' WebsocketCommunicator state none.
        scopes: list[dict[str, Any]] = [{}, {"asgi": {"version": "3.0"}}, {"asgi": None}]
        for scope in scopes:
            with self.subTest(scope=scope):
                self.assertEqual([close_code(scope, code) for code in (1008, 1011, 1013)], [4008, 4011, 4013])

    def test_a_server_that_states_its_spec_version_sends_every_code_as_it_is(self) -> None:
        scope = {"asgi": {"version": "3.0", "spec_version": "2.4"}}  # as uvicorn states it
        self.assertEqual([close_code(scope, code) for code in (1008, 1011, 1013, 4029)], [1008, 1011, 1013, 4029])

    def test_1000_and_3000_to_4999_go_out_as_they_are_everywhere(self) -> None:
        for code in (1000, 3000, 4003, 4029, 4999):
            self.assertEqual(close_code({}, code), code)


class SocketStateTests(SimpleTestCase):
    async def test_a_socket_moves_from_connecting_to_open_to_closing_to_closed(self) -> None:
        socket, sent = bare_socket()
        self.assertIs(socket.state, SocketState.CONNECTING)
        self.assertTrue(await socket.admit())  # admitted: the consumer's connect() goes on
        self.assertIs(socket.state, SocketState.CONNECTING)
        await socket.accept()
        self.assertIs(socket.state, SocketState.OPEN)
        self.assertFalse(socket.closing)
        await socket.close(code=POLICY_VIOLATION)
        self.assertIs(socket.state, SocketState.CLOSED)
        self.assertTrue(socket.closing)
        # The close frame went out while CLOSING, as the server can send it (no spec version: 4008).
        self.assertEqual(
            [(message["type"], message.get("code"), state) for message, state in sent],
            [("websocket.accept", None, SocketState.CONNECTING), ("websocket.close", 4008, SocketState.CLOSING)],
        )
        # Nothing more goes out, a later close included, and its client's place is free.
        socket.outbox.put_reply("late")
        await socket.close(code=1000)
        self.assertEqual((len(sent), socket.state), (2, SocketState.CLOSED))
        self.assertNotIn("address:192.0.2.7", sockets._open)

    async def test_refuse_refuses_the_handshake_and_counts_the_refusal(self) -> None:
        socket, sent = bare_socket()
        before = metric("paintbrush_refusals_total", reason="access")
        with self.assertLogs("paintbrush", "INFO") as logs:
            await socket.refuse("access", detail="no role document for this user")
        # A close before accept: the server answers the handshake 403.
        self.assertEqual(sent, [({"type": "websocket.close"}, SocketState.CLOSING)])
        self.assertIs(socket.state, SocketState.CLOSED)
        self.assertEqual(metric("paintbrush_refusals_total", reason="access"), before + 1)
        self.assertTrue(
            logs.output[0].endswith(
                "paintbrush.refused reason=access client=address:192.0.2.7 path=/ws "
                'detail="no role document for this user"'
            ),
            logs.output[0],
        )


class ClientKeyTests(SimpleTestCase):
    def test_a_socket_belongs_to_its_signed_in_user_else_to_its_address(self) -> None:
        user = SimpleNamespace(pk=7, is_authenticated=True)
        self.assertEqual(client_key({"user": user, "client": ("192.0.2.7", 5000)}), "user:7")
        self.assertEqual(client_key({"user": AnonymousUser(), "client": ("192.0.2.7", 5000)}), "address:192.0.2.7")
        self.assertEqual(client_key({}), "address:?")


@override_settings(CHANNEL_LAYERS=IN_MEMORY)
class SocketTests(TransactionTestCase):
    @override_settings(CHANNEL_LAYERS=IN_MEMORY, PAINTBRUSH={"MAX_SOCKETS_PER_CLIENT": 2})
    async def test_sockets_past_the_per_client_limit_are_closed_4029(self) -> None:
        first, second = await connect(), await connect()
        third = await communicator()
        await third.connect()
        self.assertEqual(
            await third.receive_output(timeout=5),
            {"type": "websocket.close", "code": 4029, "reason": "Too many sockets from this client."},
        )
        await first.disconnect()
        fourth = await connect()  # a place came free
        await subscribe(fourth, "todos")
        for ws in (second, fourth):
            await ws.disconnect()

    @override_settings(PAINTBRUSH={"MAX_ERRORS_PER_MINUTE": 2, "MAX_SOCKETS_PER_CLIENT": 1})
    async def test_a_flood_closes_once_and_releases_everything(self) -> None:
        # Frames queued behind the close used to close again: uvicorn raised, the
        # consumer died before its disconnect handler, and its place among its client's
        # sockets and its subscriptions stayed for good.
        from channels.layers import get_channel_layer

        from paintbrush.hub import get_hub

        ws = await communicator()
        ws.scope["asgi"] = {"version": "3.0", "spec_version": "2.4"}  # as uvicorn states it
        self.assertTrue((await ws.connect())[0])
        await subscribe(ws, "todos")
        for _ in range(10):
            await ws.send_to(text_data="{nope")
        self.assertEqual((await receive(ws))["error"], "bad_json")
        self.assertEqual((await receive(ws))["error"], "bad_json")
        self.assertEqual(await ws.receive_output(timeout=5), {"type": "websocket.close", "code": 1008})
        self.assertTrue(await ws.receive_nothing(timeout=0.2))  # nothing answers the rest
        hub = get_hub(get_channel_layer())
        self.assertEqual(hub.members, {})  # released without a disconnect message
        again = await connect()  # its client's one place is free again
        await subscribe(again, "todos")
        await again.disconnect()
        await ws.disconnect()
