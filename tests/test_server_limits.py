"""Limits and bulk writes against the server users run (``scripts/serve``): hostile REST
bodies get JSON answers and write nothing, a client past ``MAX_SOCKETS_PER_CLIENT`` is
closed with 4029, and a bulk update made by another process reaches the sockets as the
same events its saves would have sent."""

from __future__ import annotations

import asyncio
import http.client
import json
import subprocess
import sys
import urllib.parse
from typing import Any

import websockets
from websockets.asyncio.client import connect

from paintbrush.settings import DEFAULTS

from .servers import ROOT, ServerProcess, wait_converged
from .test_faults import FaultTestCase, needs_redis, rest, truth_of


def post_raw(url: str, body: bytes) -> tuple[int, Any]:
    """POST a body as given (``http_json`` would encode it): the status and its JSON."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=60)
    try:
        connection.request("POST", parts.path, body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


class HostileRestTests(FaultTestCase):
    async def test_hostile_bodies_get_json_errors_and_write_nothing(self) -> None:
        (server,) = await self.start_servers(1)
        url = server.url("/api/todos")
        cases = {
            "deep": ('{"title": ' + "[" * 2000 + "]" * 2000 + "}", 400),
            "nan": ('{"title": NaN}', 400),
            "huge number": ('{"title": "x", "done": 1e999}', 400),
            "3 MB": (json.dumps({"title": "x" * 3_000_000}), 413),
        }
        statuses = {}
        for name, (body, expected) in cases.items():
            status, answer = await asyncio.to_thread(post_raw, url, body.encode())
            statuses[name] = status
            self.assertEqual(status, expected, (name, answer))
            self.assertIn("detail", answer, name)
        self.figures.update(statuses=statuses)
        self.assertEqual(await truth_of(server), {})


class SocketLimitTests(FaultTestCase):
    async def test_a_client_past_the_socket_limit_is_closed_4029(self) -> None:
        (server,) = await self.start_servers(1)
        limit = DEFAULTS["MAX_SOCKETS_PER_CLIENT"]
        sockets = [
            await connect(server.ws_url, origin=websockets.Origin(server.origin), open_timeout=10) for _ in range(limit)
        ]
        try:
            for ws in sockets[:3]:  # the first ones work
                await ws.send('{"action": "opendoc", "resource": "todos"}')
                self.assertEqual(json.loads(await ws.recv()), {"type": "opened", "resource": "todos"})
            async with connect(server.ws_url, origin=websockets.Origin(server.origin)) as extra:
                with self.assertRaises(websockets.ConnectionClosed) as closed:
                    await asyncio.wait_for(extra.recv(), 10)
            self.assertEqual(closed.exception.rcvd.code if closed.exception.rcvd else None, 4029)
            await sockets[0].close()
            async with connect(server.ws_url, origin=websockets.Origin(server.origin)) as again:  # a place is free
                await again.send('{"action": "opendoc", "resource": "todos"}')
                self.assertEqual(json.loads(await asyncio.wait_for(again.recv(), 10))["type"], "opened")
        finally:
            for ws in sockets:
                await ws.close()
        self.figures.update(limit=limit, close_code=4029)


@needs_redis
class BulkWriteTests(FaultTestCase):
    async def test_a_bulk_update_in_another_process_reaches_the_sockets_as_events(self) -> None:
        redis = await asyncio.to_thread(self.redis)
        (server,) = await self.start_servers(1, redis)
        for i in range(20):
            status, _ = await rest("POST", server.url("/api/todos"), {"title": f"todo {i}"})
            self.assertEqual(status, 201)
        async with self.clients((server, "watcher")) as clients:
            (client,) = clients
            await client.open("todos")
            before = client.figures.events
            # An operator's bulk change, from the shell, as the README says it publishes.
            code = (
                "from project.demo.models import Todo; "
                "Todo.objects.filter(title__endswith='5').update(done=True); "
                "Todo.objects.filter(title__in=['todo 1', 'todo 2']).delete()"
            )
            await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "manage.py", "shell", "-c", code],
                cwd=ROOT,
                env=ServerProcess(redis_url=redis.url, prefix=server.prefix).environment(),
                check=True,
                timeout=60,
            )
            truth = await truth_of(server)
            ok, seconds = await wait_converged([client], "todos", truth, 20)
            self.assertTrue(ok, self.divergence([client], truth))
            delivered = client.figures.events - before
        # 'todo 5' and 'todo 15' updated, two deleted: four events, no resync.
        self.assertEqual((delivered, client.figures.resyncs), (4, 0))
        self.assertEqual(sorted(t["version"] for t in truth.values() if t["done"]), [2, 2])
        self.figures.update(written=4, delivered=delivered, resyncs=0, converge_s=seconds)
