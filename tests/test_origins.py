"""
The WebSocket handshake's origin check (``paintbrush.origins``): Django's CSRF rule, so
that a page REST refuses cannot open a socket with the visitor's session either.

Unit tests drive ``SameOriginValidator`` with ASGI messages, and compare its answers
with ``CsrfViewMiddleware``'s for the same page; the last class signs a user in and
tries foreign origins against the servers users run (``scripts/serve`` and
``runserver``), as the hostile-testing report did.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any

from asgiref.sync import sync_to_async
from channels.testing import ApplicationCommunicator
from django.http import HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.test import RequestFactory, SimpleTestCase, override_settings
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from paintbrush import metrics
from paintbrush.origins import SameOriginValidator, origin_allowed

from .servers import ServerProcess
from .test_faults import FaultTestCase

#: Where the page was served in the report.
SITE = "127.0.0.1:8300"


def ws_scope(
    origin: str | None, host: str | None = SITE, scheme: str = "ws", headers: Iterable[tuple[str, str]] = ()
) -> dict[str, Any]:
    """A WebSocket handshake's ASGI scope, as uvicorn makes one."""
    sent = [] if host is None else [(b"host", host.encode())]
    if origin is not None:
        sent.append((b"origin", origin.encode()))
    sent += [(name.encode(), value.encode()) for name, value in headers]
    return {"type": "websocket", "scheme": scheme, "path": "/ws", "headers": sent, "client": ("203.0.113.9", 50000)}


async def _accept(scope: Any, receive: Any, send: Any) -> None:
    """The application behind the validator: accepts every handshake it is given."""
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})


async def handshake(origin: str | None, host: str | None = SITE, scheme: str = "ws", **kwargs: Any) -> str:
    """What the server is told to do with the handshake: ``websocket.accept`` (the
    application was reached) or ``websocket.close`` (refused before it)."""
    communicator = ApplicationCommunicator(SameOriginValidator(_accept), ws_scope(origin, host, scheme, **kwargs))
    await communicator.send_input({"type": "websocket.connect"})
    answer = await communicator.receive_output(timeout=5)
    await communicator.wait(timeout=5)  # and the validator returned, with no exception
    return str(answer["type"])


ACCEPT, REFUSE = "websocket.accept", "websocket.close"


class SameOriginTests(SimpleTestCase):
    async def assert_answers(self, expected: str, origins: Iterable[str | None], **kwargs: Any) -> None:
        for origin in origins:
            # A refusal is logged (and counted); an accepted handshake logs nothing.
            with self.assertLogs("paintbrush", "INFO") if expected == REFUSE else self.assertNoLogs("paintbrush"):
                self.assertEqual(await handshake(origin, **kwargs), expected, (origin, kwargs))

    async def test_the_pages_own_origin_is_accepted(self) -> None:
        await self.assert_answers(ACCEPT, ["http://127.0.0.1:8300"])
        await self.assert_answers(ACCEPT, ["https://127.0.0.1:8300"], scheme="wss")
        await self.assert_answers(ACCEPT, ["http://localhost"], host="localhost")
        await self.assert_answers(ACCEPT, ["https://localhost"], host="localhost", scheme="wss")
        await self.assert_answers(ACCEPT, ["http://[::1]:8300"], host="[::1]:8300")
        # Browsers leave a default port out of Origin; a Host may name it.
        await self.assert_answers(ACCEPT, ["http://localhost", "http://localhost:80"], host="localhost:80")
        await self.assert_answers(ACCEPT, ["https://localhost"], host="localhost:443", scheme="wss")
        await self.assert_answers(ACCEPT, ["http://LOCALHOST"], host="LocalHost")

    async def test_another_port_scheme_or_host_is_refused(self) -> None:
        foreign = [
            "http://127.0.0.1:9999",
            "http://127.0.0.1",  # port 80
            "http://localhost:3000",
            "http://localhost:8300",  # another host, though allowed
            "https://127.0.0.1",
            "https://127.0.0.1:8300",  # the socket is ws: the page was http
            "http://evil.example",
        ]
        await self.assert_answers(REFUSE, foreign)
        await self.assert_answers(REFUSE, ["http://127.0.0.1:8300"], scheme="wss")

    async def test_malformed_origins_are_refused(self) -> None:
        malformed = [
            "http://127.0.0.1:8300.evil.test",  # Channels saw the host 127.0.0.1 here
            "null",
            "",
            "http://127.0.0.1:8300/",
            "http://127.0.0.1:8300/evil",
            "http://127.0.0.1:8300?x=1",
            "http://127.0.0.1:8300#x",
            "http://alice@127.0.0.1:8300",
            "http://127.0.0.1:",
            "http://127.0.0.1:99999",
            "127.0.0.1:8300",
            "ws://127.0.0.1:8300",
            "file://127.0.0.1:8300",
            "http://127.0.0.1:8300 ",
            "http://127.0.0.1:8300\n",
        ]
        await self.assert_answers(REFUSE, malformed)
        await self.assert_answers(REFUSE, ["http://127.0.0.1:8300"], headers=[("origin", "http://127.0.0.1:8300")])

    async def test_a_missing_origin_is_refused(self) -> None:
        await self.assert_answers(REFUSE, [None])

    async def test_a_host_allowed_hosts_refuses_gives_no_own_origin(self) -> None:
        await self.assert_answers(REFUSE, ["http://evil.example"], host="evil.example")
        await self.assert_answers(REFUSE, ["http://127.0.0.1:8300"], host=None)
        await self.assert_answers(REFUSE, ["http://127.0.0.1:8300.evil.test"], host="127.0.0.1:8300.evil.test")
        with override_settings(ALLOWED_HOSTS=[".example.com"]):  # read at each handshake
            await self.assert_answers(ACCEPT, ["https://app.example.com"], host="app.example.com", scheme="wss")
            await self.assert_answers(REFUSE, ["http://127.0.0.1:8300"])
        with override_settings(DEBUG=True, ALLOWED_HOSTS=[]):  # Django's hosts in debug mode
            await self.assert_answers(ACCEPT, ["http://app.localhost:8000"], host="app.localhost:8000")
        with override_settings(DEBUG=False, ALLOWED_HOSTS=[]):
            await self.assert_answers(REFUSE, ["http://localhost:8000"], host="localhost:8000")

    @override_settings(CSRF_TRUSTED_ORIGINS=["https://app.example.com", "https://*.example.org"])
    async def test_csrf_trusted_origins_are_accepted_wildcards_included(self) -> None:
        await self.assert_answers(
            ACCEPT, ["https://app.example.com", "https://shop.example.org", "https://example.org"]
        )
        refused = [
            "http://app.example.com",  # another scheme
            "https://app.example.com:8443",  # another port
            "https://shop.example.org:8443",
            "http://shop.example.org",
            "https://evilexample.org",
            "https://app.example.com.evil.test",
            "https://shop.example.org/evil",
        ]
        await self.assert_answers(REFUSE, refused)

    async def test_a_proxy_tells_the_scheme_by_secure_proxy_ssl_header(self) -> None:
        https = [("x-forwarded-proto", "https")]
        # Without the setting the header means nothing: the server's scheme counts.
        await self.assert_answers(REFUSE, ["https://127.0.0.1:8300"], headers=https)
        with override_settings(SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https")):
            await self.assert_answers(ACCEPT, ["https://127.0.0.1:8300"], headers=https)
            await self.assert_answers(REFUSE, ["http://127.0.0.1:8300"], headers=https)
            await self.assert_answers(ACCEPT, ["http://127.0.0.1:8300"], headers=[("x-forwarded-proto", "http")])
            await self.assert_answers(REFUSE, ["https://127.0.0.1:8300"], headers=[("x-forwarded-proto", "http")])
            # No header: the server's scheme (uvicorn's --proxy-headers sets it).
            await self.assert_answers(ACCEPT, ["https://127.0.0.1:8300"], scheme="wss")

    async def test_a_proxy_tells_the_host_by_x_forwarded_host_when_allowed_to(self) -> None:
        forwarded = [("x-forwarded-host", "localhost:8443")]
        await self.assert_answers(REFUSE, ["https://localhost:8443"], scheme="wss", headers=forwarded)
        with override_settings(USE_X_FORWARDED_HOST=True):
            await self.assert_answers(ACCEPT, ["https://localhost:8443"], scheme="wss", headers=forwarded)
            await self.assert_answers(REFUSE, ["https://127.0.0.1:8300"], scheme="wss", headers=forwarded)
            await self.assert_answers(ACCEPT, ["https://127.0.0.1:8300"], scheme="wss")  # none sent: Host

    async def test_a_refusal_is_counted_and_logged_with_the_origin(self) -> None:
        def refusals() -> float:
            return metrics.registry.get_sample_value("paintbrush_refusals_total", {"reason": "origin"}) or 0.0

        before = refusals()
        with self.assertLogs("paintbrush", "INFO") as logs:
            self.assertEqual(await handshake("http://localhost:3000"), REFUSE)
        self.assertEqual(refusals(), before + 1)
        self.assertEqual(
            logs.output,
            [
                "INFO:paintbrush:paintbrush.refused reason=origin client=address:203.0.113.9 path=/ws "
                "origin=http://localhost:3000"
            ],
        )
        self.assertEqual(await handshake("http://127.0.0.1:8300"), ACCEPT)
        self.assertEqual(refusals(), before + 1)

    async def test_only_websocket_handshakes_are_checked(self) -> None:
        with self.assertRaisesMessage(ValueError, 'the ProtocolTypeRouter\'s "websocket" entry'):
            await SameOriginValidator(_accept)({"type": "http"}, _never, _never)


async def _never(*args: Any) -> Any:
    raise AssertionError("not called")


def _csrf_accepts(origin: str, host: str, secure: bool) -> bool:
    """Whether Django's CSRF check takes a POST from ``origin`` to ``host``."""
    request = RequestFactory().post("/", HTTP_ORIGIN=origin, HTTP_HOST=host, secure=secure)
    middleware = CsrfViewMiddleware(lambda request: HttpResponse())
    return bool(middleware._origin_verified(request))  # type: ignore[attr-defined]  # the rule itself, not a 403


class DjangoParityTests(SimpleTestCase):
    """A socket is opened from exactly the pages REST takes a signed-in POST from."""

    @override_settings(CSRF_TRUSTED_ORIGINS=["https://app.example.com", "https://*.example.org", "http://*.test:8000"])
    def test_the_answers_are_django_csrf_checks(self) -> None:
        origins = [
            "http://127.0.0.1:8300",
            "https://127.0.0.1:8300",
            "http://127.0.0.1:9999",
            "http://127.0.0.1",
            "https://127.0.0.1",
            "http://localhost:3000",
            "http://localhost",
            "https://localhost",
            "http://[::1]:8300",
            "https://app.example.com",
            "http://app.example.com",
            "https://a.b.example.org",
            "https://example.org",
            "https://example.org:444",
            "http://shop.test:8000",
            "http://shop.test:8001",
            "http://evil.example",
            "null",
        ]
        hosts = ["127.0.0.1:8300", "localhost", "[::1]:8300", "evil.example", "app.example.com"]
        differences = [
            (origin, host, secure)
            for origin in origins
            for host in hosts
            for secure in (False, True)
            if origin_allowed(ws_scope(origin, host, "wss" if secure else "ws")) != _csrf_accepts(origin, host, secure)
        ]
        self.assertEqual(differences, [])
        # And the test can tell them apart: both accept some of these, and refuse others.
        answers = {origin_allowed(ws_scope(o, h)) for o in origins for h in hosts}
        self.assertEqual(answers, {True, False})


# -- against the servers users run ----------------------------------------------------------------


def _alice_with_an_order() -> tuple[str, int]:
    """A customer with one order, signed in: her session cookie, and the order's id."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from project.demo.models import Order, Product

    alice = get_user_model().objects.create_user("alice", password="pw")
    order = Order.objects.create(user=alice, product=Product.objects.create(name="brush", price=3))
    client = Client()
    client.force_login(alice)
    return f"sessionid={client.cookies['sessionid'].value}", order.pk


def foreign_origins(server: ServerProcess) -> dict[str, str | None]:
    """What the report tried against a server on ``server.origin``, and a few more."""
    other_port = server.port + 1 if server.port < 65535 else server.port - 1
    return {
        "other port": f"http://127.0.0.1:{other_port}",
        "dev server": "http://localhost:3000",
        "https, default port": "https://127.0.0.1",
        "https, same port": f"https://127.0.0.1:{server.port}",
        "malformed port": f"http://127.0.0.1:{server.port}.evil.test",
        "path junk": f"{server.origin}/evil",
        "null": "null",
        "missing": None,
    }


async def server_handshake(url: str, origin: str | None, cookie: str) -> tuple[int, list[Any]]:
    """Open ``url`` as the session ``cookie`` with ``origin``: (101, what a socket of
    that kind shows its user) when accepted, else (the handshake's HTTP status, [])."""
    try:
        async with connect(
            url,
            origin=None if origin is None else Origin(origin),
            additional_headers={"Cookie": cookie},
            open_timeout=10,
        ) as ws:
            if url.endswith("/doc"):  # the role document comes unasked
                return 101, [json.loads(await asyncio.wait_for(ws.recv(), 10))]
            await ws.send(json.dumps({"action": "opendoc", "resource": "orders", "snapshot": True}))
            return 101, [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(2)]
    except InvalidStatus as exc:
        return exc.response.status_code, []


class RealServerOriginTests(FaultTestCase):
    async def test_foreign_origins_are_refused_and_the_own_origin_works_on_both_servers(self) -> None:
        """The report's finding: with alice's cookie, pages on another port, on https,
        on localhost:3000, and a malformed Origin whose host only looked allowed, got her
        orders and her role document. Each is refused now, with 403 (Daphne answers an
        Origin it cannot parse with 400 itself); her own page still gets both."""
        cookie, order_pk = await sync_to_async(_alice_with_an_order)()
        accepted: dict[str, list[str]] = {}
        seen: dict[str, dict[str, dict[str, int]]] = {}  # server -> origin -> path -> HTTP status
        for kind in ("serve", "runserver"):
            server = ServerProcess(kind=kind)
            self.addCleanup(server.close)
            await asyncio.to_thread(server.start)
            self.servers.append(server)

            status, frames = await server_handshake(server.ws_url, server.origin, cookie)
            self.assertEqual(status, 101, f"{kind}: the own origin was refused\n{self.logs()}")
            self.assertEqual(frames[0], {"type": "opened", "resource": "orders"}, kind)
            self.assertEqual([item["id"] for item in frames[1]["items"]], [order_pk], kind)
            status, frames = await server_handshake(server.ws_url + "/doc", server.origin, cookie)
            self.assertEqual((status, frames[0]["doc"]["user"]["username"]), (101, "alice"), kind)

            statuses = seen[kind] = {}
            for name, origin in foreign_origins(server).items():
                for path in ("/ws", "/ws/doc"):
                    status, frames = await server_handshake(server.url(path).replace("http", "ws", 1), origin, cookie)
                    statuses.setdefault(name, {})[path] = status
                    if status == 101:
                        accepted.setdefault(kind, []).append(f"{name} {path}: {len(frames)} frames")
        self.figures.update(statuses=seen, foreign_accepted={kind: len(accepted.get(kind, [])) for kind in seen})
        self.assertEqual(accepted, {}, "foreign origins were accepted")
        for kind, statuses in seen.items():
            for name, paths in statuses.items():
                refused_with = {403, 400} if (kind, name) == ("runserver", "malformed port") else {403}
                for path, status in paths.items():
                    self.assertIn(status, refused_with, (kind, name, path))
