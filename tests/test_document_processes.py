"""Document patches across server processes (docs/protocol.md, section 2c), against two
``scripts/serve`` processes on a real Redis: customers and the admin hold patch sockets
on both processes while writers on both change orders and prices at once, and every
socket, applying its frames in order, ends with exactly what ``GET /api/doc`` returns;
then the same after the layer resyncs (a Redis restart)."""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import threading
import time
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.db import OperationalError
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Origin

from paintbrush.testing import DocumentReplica
from project.demo.models import Product

from .servers import RedisServer, ServerProcess, http_call
from .test_faults import FaultTestCase, needs_redis
from .test_scope_processes import session_for

User = get_user_model()

#: How long a socket may take to converge once the writes are done (a loaded machine).
CONVERGE_SECONDS = 15.0


class Watcher:
    """One patch socket and the document it holds."""

    def __init__(self, name: str, session: str, server: ServerProcess, path: str) -> None:
        self.name, self.session, self.server, self.path = name, session, server, path
        self.replica = DocumentReplica()
        self.ws: ClientConnection | None = None

    async def open(self) -> None:
        self.ws = await connect(
            self.server.ws_url.replace("/ws", self.path) if self.path != "/ws" else self.server.ws_url,
            origin=Origin(self.server.origin),
            additional_headers={"Cookie": f"sessionid={self.session}"},
            max_size=2**24,
        )
        if self.path == "/ws":
            await self.ws.send(json.dumps({"action": "opendoc", "resource": "doc", "patch": True}))
        await self.next_document()

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()

    async def next_document(self) -> None:
        assert self.ws is not None
        while True:
            frame = json.loads(await self.ws.recv())
            if frame.get("type") == "doc":
                self.replica.take(frame)
                return
            if frame.get("type") == "resync":  # re-open: the whole document follows
                await self.ws.send(json.dumps({"action": "opendoc", "resource": "doc", "patch": True}))

    async def converge(self, expected: Any) -> None:
        async with asyncio.timeout(CONVERGE_SECONDS):
            while self.replica.doc != expected:
                await self.next_document()


@needs_redis
class DocumentPatchesAcrossProcessesTests(FaultTestCase):
    async def test_concurrent_writers_on_two_processes_every_patch_socket_converges(self) -> None:
        admin = await asyncio.to_thread(User.objects.create_user, "admin", is_staff=True)
        customers = [await asyncio.to_thread(User.objects.create_user, f"c{i}") for i in range(4)]
        products = await asyncio.to_thread(
            lambda: [Product.objects.create(name=f"p{i}", price=Decimal("1.00") + i) for i in range(30)]
        )
        sessions = {user.pk: await asyncio.to_thread(session_for, user) for user in [admin, *customers]}
        redis = await asyncio.to_thread(self.redis)
        servers = await self.start_servers(2, redis=redis)

        watchers = [
            Watcher(f"{user.username}@{index}{path}", sessions[user.pk], server, path)
            for user in [admin, *customers]
            for index, server in enumerate(servers)
            for path in ("/ws/doc?patch=1", "/ws")
        ]
        try:
            await self.write_and_converge(
                admin=admin,
                customers=customers,
                products=products,
                sessions=sessions,
                servers=servers,
                redis=redis,
                watchers=watchers,
            )
        finally:
            for watcher in watchers:
                await watcher.close()

    async def write_and_converge(
        self,
        *,
        admin: Any,
        customers: list[Any],
        products: list[Product],
        sessions: dict[Any, str],
        servers: list[ServerProcess],
        redis: RedisServer,
        watchers: list[Watcher],
    ) -> None:
        for watcher in watchers:
            await watcher.open()

        csrf = secrets.token_hex(16)
        stop = threading.Event()
        statuses: list[int] = []

        def call(user: Any, server: ServerProcess, method: str, path: str, body: Any = None) -> Any:
            headers = {"Cookie": f"sessionid={sessions[user.pk]}; csrftoken={csrf}", "X-CSRFToken": csrf}
            for _ in range(50):
                status, _, data = http_call(method, server.url(path), body, headers)
                if status != 503:
                    break
                # SQLite takes one writer at a time: a locked database is a 503 with
                # Retry-After, and a client tries again.
                time.sleep(0.05)
            statuses.append(status)
            return data

        def customer_writes(user: Any, seed: int) -> None:
            rng = random.Random(seed)
            mine: list[int] = []
            for _ in range(25):
                server = rng.choice(servers)
                if not mine or rng.random() < 0.5:
                    body = {"product": rng.choice(products).pk, "quantity": rng.randint(1, 5)}
                    mine.append(call(user, server, "POST", "/api/orders", body)["id"])
                elif rng.random() < 0.7:
                    call(user, server, "PATCH", f"/api/orders/{rng.choice(mine)}", {"quantity": rng.randint(1, 9)})
                else:
                    call(user, server, "DELETE", f"/api/orders/{mine.pop(rng.randrange(len(mine)))}")

        def staff_writes() -> None:
            rng = random.Random(99)
            for step in range(25):
                product = rng.choice(products)
                call(admin, rng.choice(servers), "PATCH", f"/api/products/{product.pk}", {"price": f"{step + 2}.50"})

        def shell_writes() -> None:
            # An ORM write outside any server, as the shell or a task makes it.
            for step in range(10):
                for _ in range(50):
                    try:
                        Product.objects.filter(pk=products[step].pk).update(name=f"renamed {step}")
                        break
                    except OperationalError:  # locked by a server's write: try again
                        time.sleep(0.05)

        threads = [threading.Thread(target=customer_writes, args=(user, i)) for i, user in enumerate(customers)]
        threads += [threading.Thread(target=staff_writes), threading.Thread(target=shell_writes)]
        for thread in threads:
            thread.start()
        # Read while they write: a socket that is not read would only show coalescing.
        readers = [asyncio.create_task(read_until(watcher, stop)) for watcher in watchers]
        await asyncio.gather(*(asyncio.to_thread(thread.join) for thread in threads))
        stop.set()
        await asyncio.gather(*readers)
        self.assertTrue(statuses and all(status in (200, 201, 204) for status in statuses), statuses)

        expected = {}
        for user in [admin, *customers]:
            expected[user.pk] = await asyncio.to_thread(self.api_doc, servers[0], sessions[user.pk])
        for watcher, user in zip(watchers, [u for u in [admin, *customers] for _ in range(4)], strict=True):
            await watcher.converge(expected[user.pk])
        patches = sum(watcher.replica.patches for watcher in watchers)
        wholes = sum(watcher.replica.wholes for watcher in watchers)
        self.assertGreater(patches, len(watchers))
        self.figures.update(sockets=len(watchers), patches=patches, wholes=wholes, writes=len(statuses))

        # The layer restarts: every hub resyncs, reads every part again, and patches on.
        await asyncio.to_thread(redis.stop)
        await asyncio.to_thread(redis.start)
        await asyncio.to_thread(call, admin, servers[1], "PATCH", f"/api/products/{products[0].pk}", {"price": "0.99"})
        expected = {}
        for user in [admin, *customers]:
            expected[user.pk] = await asyncio.to_thread(self.api_doc, servers[0], sessions[user.pk])
        for watcher, user in zip(watchers, [u for u in [admin, *customers] for _ in range(4)], strict=True):
            await watcher.converge(expected[user.pk])
        self.figures.update(
            after_restart_patches=sum(watcher.replica.patches for watcher in watchers) - patches,
            after_restart_wholes=sum(watcher.replica.wholes for watcher in watchers) - wholes,
        )

    @staticmethod
    def api_doc(server: ServerProcess, session: str) -> Any:
        status, _, body = http_call("GET", server.url("/api/doc"), None, {"Cookie": f"sessionid={session}"})
        assert status == 200, status
        return body


async def read_until(watcher: Watcher, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            async with asyncio.timeout(0.2):
                await watcher.next_document()
        except TimeoutError:
            continue
