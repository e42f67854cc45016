"""The server users run (``scripts/serve``) against three findings of hostile testing:

- a forged ``X-Forwarded-For`` is ignored unless ``FORWARDED_ALLOW_IPS`` names the
  proxy, so a local process can neither step around ``MAX_SOCKETS_PER_CLIENT`` nor pose
  as another address to the metrics views;
- a socket frame holding an unpaired surrogate (``"\\ud800"``) is answered ``bad_json``
  and the socket goes on (the echo of the request could not be sent as UTF-8, so the
  client used to hear nothing);
- a text frame that is not UTF-8 is closed with 1007 and logged as one INFO line, not
  an ERROR with a traceback per connection (a log flood anyone could cause).

Each test prints a ``FAULT-FIGURES`` line, as the fault tests do.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import websockets
from django.conf import settings
from django.test import SimpleTestCase
from websockets.asyncio.client import ClientConnection, connect

from paintbrush.logfilters import ClientProtocolErrors, client_protocol_error

from .servers import ServerProcess, http_json
from .test_faults import FaultTestCase, rest, truth_of

Opener = Callable[..., Awaitable[ClientConnection]]

#: The socket cap the server processes here run with (PAINTBRUSH_SETTINGS).
LIMIT = 3
#: Documentation addresses (RFC 5737): what a forged header claims.
FORGED = [f"203.0.113.{i}" for i in range(1, 10)]


class ServeProcess(ServerProcess):
    """``scripts/serve`` with variables of the test's own environment left out
    (``ServerProcess`` can add variables, not remove them)."""

    def __init__(self, *, unset: Iterable[str] = (), **options: Any) -> None:
        super().__init__(kind="serve", **options)
        self.unset = tuple(unset)

    def environment(self) -> dict[str, str]:
        env = super().environment()
        for name in self.unset:
            env.pop(name, None)
        return env


class ServeTestCase(FaultTestCase):
    async def serve(
        self, env: dict[str, str] | None = None, unset: Iterable[str] = (), limit: int = LIMIT
    ) -> ServeProcess:
        """A started ``scripts/serve`` whose client may hold ``limit`` sockets."""
        overrides = json.dumps({"MAX_SOCKETS_PER_CLIENT": limit})
        server = ServeProcess(env={"PAINTBRUSH_SETTINGS": overrides, **(env or {})}, unset=unset)
        self.addCleanup(server.close)
        await asyncio.to_thread(server.start)
        self.servers.append(server)
        return server

    @contextlib.asynccontextmanager
    async def sockets(self, server: ServerProcess) -> AsyncIterator[Opener]:
        """Opens sockets to ``server`` (with a forged ``X-Forwarded-For`` if given), all
        closed on the way out."""
        opened: list[ClientConnection] = []

        async def open_socket(forwarded_for: str | None = None) -> ClientConnection:
            headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
            ws = await connect(
                server.ws_url, origin=websockets.Origin(server.origin), additional_headers=headers, open_timeout=10
            )
            opened.append(ws)
            return ws

        try:
            yield open_socket
        finally:
            await asyncio.gather(*(ws.close() for ws in opened), return_exceptions=True)

    async def answer(self, ws: ClientConnection, text: str) -> Any:
        """Send one frame; the frame that answers it."""
        await ws.send(text)
        return json.loads(await asyncio.wait_for(ws.recv(), 10))

    async def admitted(self, ws: ClientConnection) -> bool:
        """True if the server keeps the socket (it answers a bad frame), False if it was
        closed with 4029 (the close frame comes before any answer)."""
        try:
            reply = await self.answer(ws, "not json")
        except websockets.ConnectionClosed as closed:
            self.assertEqual(closed.rcvd.code if closed.rcvd else None, 4029, self.logs())
            return False
        self.assertEqual(reply["error"], "bad_json")
        return True

    async def metrics_status(self, server: ServerProcess, forwarded_for: str) -> int:
        status, _ = await asyncio.to_thread(
            http_json, "GET", server.url("/ops/metrics.json"), None, {"X-Forwarded-For": forwarded_for}
        )
        return status


class ForwardedForTests(ServeTestCase):
    async def test_a_forged_forwarded_for_is_ignored_without_forwarded_allow_ips(self) -> None:
        server = await self.serve(unset=["FORWARDED_ALLOW_IPS"])
        async with self.sockets(server) as open_socket:
            sockets = [await open_socket(forwarded_for=address) for address in FORGED[: LIMIT + 1]]
            admitted = [await self.admitted(ws) for ws in sockets]
        # One client, whatever each socket claims: the one past the limit is closed.
        self.assertEqual(admitted, [True] * LIMIT + [False])
        self.assertIn("reason=too_many_sockets client=address:127.0.0.1 ", server.log_text())
        # The metrics views see the loopback address, which they admit, not the claim.
        self.assertEqual(await self.metrics_status(server, FORGED[-1]), 200)
        self.figures.update(limit=LIMIT, admitted=admitted, metrics=200)

    async def test_forwarded_for_is_honoured_from_the_proxies_named_in_forwarded_allow_ips(self) -> None:
        # The opt-in, as docs/nginx.conf runs it: nginx on the same machine.
        server = await self.serve(env={"FORWARDED_ALLOW_IPS": "127.0.0.1"})
        first, second = FORGED[0], FORGED[1]
        async with self.sockets(server) as open_socket:
            sockets = [await open_socket(forwarded_for=first) for _ in range(LIMIT)]
            sockets.append(await open_socket(forwarded_for=second))  # another visitor
            sockets.append(await open_socket(forwarded_for=first))  # the first one's 4th
            admitted = [await self.admitted(ws) for ws in sockets]
        self.assertEqual(admitted, [True] * (LIMIT + 1) + [False])
        self.assertIn(f"reason=too_many_sockets client=address:{first} ", server.log_text())
        # A visitor through the proxy is not the proxy's own loopback address.
        self.assertEqual(await self.metrics_status(server, FORGED[-1]), 403)
        self.figures.update(limit=LIMIT, admitted=admitted, metrics=403)


class LoneSurrogateTests(ServeTestCase):
    async def test_a_frame_with_an_unpaired_surrogate_is_answered_bad_json_and_the_socket_goes_on(self) -> None:
        server = await self.serve()
        async with self.sockets(server) as open_socket:
            ws = await open_socket()
            answers = {}
            for text in (r'{"action":"opendoc","resource":"\ud800"}', r'{"action":"opendoc","resource":"x\uDFFF"}'):
                reply = await self.answer(ws, text)
                answers[text] = reply["error"]
                self.assertEqual(reply["type"], "error")
                self.assertEqual(reply["error"], "bad_json")
                self.assertIn("unpaired surrogate", reply["message"])
                self.assertNotIn("request", reply)  # nothing parsed, nothing echoed
            # An escaped pair is a character (an emoji): parsed, and echoed back as one.
            reply = await self.answer(ws, r'{"action":"opendoc","resource":"\ud83d\ude00"}')
            self.assertEqual((reply["error"], reply["request"]["resource"]), ("unknown_resource", "\U0001f600"))
            reply = await self.answer(ws, '{"action":"opendoc","resource":"todos"}')
            self.assertEqual(reply, {"type": "opened", "resource": "todos"}, server.log_tail())
        self.figures.update(answers=list(answers.values()), then="opened")

    async def test_a_rest_body_with_an_unpaired_surrogate_is_400_and_writes_nothing(self) -> None:
        server = await self.serve()
        # json.dumps writes the escape: the body is {"title": "\ud800"}.
        status, answer = await rest("POST", server.url("/api/todos"), {"title": "\ud800"})
        self.assertEqual(status, 400, answer)
        self.assertIn("unpaired surrogate", answer["detail"])
        self.assertEqual(await truth_of(server), {})
        self.figures.update(status=status)


class InvalidUtf8Tests(ServeTestCase):
    CONNECTIONS = 20

    async def test_text_frames_that_are_not_utf8_are_closed_1007_without_an_error_in_the_log(self) -> None:
        server = await self.serve(limit=self.CONNECTIONS + 1)  # all at once, and one more

        async with self.sockets(server) as open_socket:

            async def send_invalid() -> int | None:
                ws = await open_socket()
                await ws.send(b"\xff\xfe", text=True)  # sent as is: the client does not check
                with self.assertRaises(websockets.ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), 10)
                return closed.exception.rcvd.code if closed.exception.rcvd else None

            codes = await asyncio.gather(*(send_invalid() for _ in range(self.CONNECTIONS)))
            self.assertEqual(codes, [1007] * self.CONNECTIONS)
            # The server still serves.
            reply = await self.answer(await open_socket(), '{"action":"opendoc","resource":"todos"}')
            self.assertEqual(reply, {"type": "opened", "resource": "todos"})
        log = server.log_text()
        errors = [line for line in log.splitlines() if line.startswith("ERROR") or "Traceback" in line]
        self.assertEqual(errors, [], server.log_tail())
        # One INFO line per connection: the log still says what happened, once.
        notices = log.count("INFO:     Invalid UTF-8 sequence received from client: closed with 1007.")
        self.assertEqual(notices, self.CONNECTIONS, server.log_tail())
        self.figures.update(
            connections=self.CONNECTIONS, closes=sorted({str(code) for code in codes}), errors=len(errors), info=notices
        )


class ClientProtocolErrorFilterTests(SimpleTestCase):
    """The filter on uvicorn's error logger (``project.settings.LOGGING``) alone."""

    def record(self, msg: str) -> logging.LogRecord:
        """An ERROR with a traceback, as ``logger.exception`` makes it."""
        try:
            b"\xff".decode()
        except UnicodeDecodeError:
            exc_info = sys.exc_info()
        return logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1, msg, None, exc_info)

    def test_invalid_utf8_becomes_one_info_line_without_the_traceback(self) -> None:
        record = self.record("Invalid UTF-8 sequence received from client.")
        logger = logging.getLogger("uvicorn.error")
        level = logger.level
        self.addCleanup(logger.setLevel, level)
        logger.setLevel(logging.INFO)
        self.assertTrue(client_protocol_error(record))
        self.assertEqual((record.levelno, record.levelname, record.exc_info), (logging.INFO, "INFO", None))
        self.assertEqual(record.getMessage(), "Invalid UTF-8 sequence received from client: closed with 1007.")
        # uvicorn --log-level warning: dropped, as any INFO line of that logger would be.
        logger.setLevel(logging.WARNING)
        self.assertFalse(client_protocol_error(self.record("Invalid UTF-8 sequence received from client.")))

    def test_other_errors_pass_unchanged(self) -> None:
        record = self.record("Exception in ASGI application\n")
        self.assertTrue(client_protocol_error(record))
        self.assertEqual(record.levelno, logging.ERROR)
        self.assertIsNotNone(record.exc_info)

    def test_the_demo_settings_install_it_on_uvicorns_error_logger(self) -> None:
        config: dict[str, Any] = settings.LOGGING
        self.assertEqual(config["loggers"]["uvicorn.error"], {"filters": ["client_protocol_errors"]})
        self.assertEqual(
            config["filters"]["client_protocol_errors"], {"()": "paintbrush.logfilters.ClientProtocolErrors"}
        )
        self.assertIsInstance(logging.getLogger("uvicorn.error").filters[0], ClientProtocolErrors)
