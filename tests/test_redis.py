"""Scaling out: with channels-redis, a write made by another process (here a
``manage.py shell`` subprocess, as an operator would) reaches this process's sockets.

Needs a Redis server: ``PAINTBRUSH_TEST_REDIS_URL`` (``scripts/test`` starts one).
Without it these tests are skipped locally and fail in CI, where a skip would hide a
missing service.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
import unittest
import uuid
from pathlib import Path
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection
from django.test import TransactionTestCase, override_settings

from paintbrush.groups import event_group
from project.demo.models import Todo

from .utils import receive, subscribe, ws_connect

REDIS_URL = os.environ.get("PAINTBRUSH_TEST_REDIS_URL")
ROOT = Path(__file__).resolve().parent.parent

if not REDIS_URL and os.environ.get("CI"):
    raise RuntimeError("CI must provide PAINTBRUSH_TEST_REDIS_URL (a Redis server) for the scale-out tests.")


def redis_layers() -> dict[str, Any]:
    # A fresh prefix per test class: runs never see each other's groups.
    return {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "socket_timeout": 30}],
                "prefix": f"pbtest{uuid.uuid4().hex[:8]}",
                "capacity": 1000,
            },
        }
    }


def database_url() -> str:
    """The test database, as a DATABASE_URL for a subprocess."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    return f"postgres://{s['USER']}:{s['PASSWORD']}@{s['HOST'] or 'localhost'}:{s['PORT'] or 5432}/{s['NAME']}"


def other_process_env(layers: dict[str, Any]) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DATABASE_URL": database_url(),
        "REDIS_URL": REDIS_URL or "",
        "PAINTBRUSH_TEST_LAYER_PREFIX": layers["default"]["CONFIG"]["prefix"],
    }


def run_in_another_process(code: str, layers: dict[str, Any]) -> None:
    env = other_process_env(layers)
    subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env, check=True, timeout=60)


def start_server_process(layers: dict[str, Any]) -> tuple[subprocess.Popen[bytes], int]:
    """A second Daphne server of the project, sharing the test database and Redis."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "project.asgi:application"],
        cwd=ROOT,
        env=other_process_env(layers),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):  # a server announces nothing we could await: poll its port
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return server, port
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise RuntimeError("the second server did not start")


@unittest.skipUnless(REDIS_URL, "set PAINTBRUSH_TEST_REDIS_URL to run the Redis tests")
class RedisScaleOutTests(TransactionTestCase):
    def setUp(self) -> None:
        self.layers = redis_layers()
        override = override_settings(CHANNEL_LAYERS=self.layers)
        override.enable()
        self.addCleanup(override.disable)

    async def test_a_write_in_another_process_reaches_this_process_sockets(self) -> None:
        ws = await ws_connect()
        await subscribe(ws, "todos")
        await sync_to_async(run_in_another_process)(
            "from project.demo.models import Todo; Todo.objects.create(title='from the shell')", self.layers
        )
        event = await receive(ws)
        self.assertEqual((event["action"], event["item"]["title"]), ("create", "from the shell"))
        stored = await sync_to_async(Todo.objects.get)(title="from the shell")
        self.assertEqual(event["item"]["id"], str(stored.pk))
        await ws.disconnect()

    async def test_updates_and_deletes_cross_processes_with_versions(self) -> None:
        todo = await sync_to_async(Todo.objects.create)(title="x")
        ws = await ws_connect()
        await subscribe(ws, "todos")
        await sync_to_async(run_in_another_process)(
            "from project.demo.models import Todo\n"
            f"t = Todo.objects.get(pk='{todo.pk}'); t.done = True; t.save(); t.delete()",
            self.layers,
        )
        update, delete = await receive(ws), await receive(ws)
        self.assertEqual((update["action"], update["fields"], update["version"]), ("update", {"done": True}, 2))
        self.assertEqual((delete["action"], delete["id"], delete["version"]), ("delete", str(todo.pk), 3))
        await ws.disconnect()

    async def test_the_process_hub_is_the_only_group_member_whatever_the_sockets(self) -> None:
        sockets = [await ws_connect() for _ in range(5)]
        for ws in sockets:
            await subscribe(ws, "todos")
        layer = get_channel_layer()
        group = layer._group_key(event_group("todos", "all"))
        connection_ = layer.connection(layer.consistent_hash(group))
        self.assertEqual(await connection_.zcard(group), 1)
        await sync_to_async(Todo.objects.create)(title="fan-out")
        for ws in sockets:
            self.assertEqual((await receive(ws))["item"]["title"], "fan-out")
        for ws in sockets:
            await ws.disconnect()
        self.assertEqual(await connection_.zcard(group), 0)

    async def test_a_customer_here_gets_the_document_push_for_an_order_made_in_another_process(self) -> None:
        from django.contrib.auth import get_user_model

        from project.demo.models import Product

        alice = await sync_to_async(get_user_model().objects.create_user)("alice")
        bob = await sync_to_async(get_user_model().objects.create_user)("bob")
        product = await sync_to_async(Product.objects.create)(name="Brush", price="9.99")
        ws = await ws_connect("/ws/doc", user=alice)
        self.assertEqual((await receive(ws))["doc"]["orders"], [])
        await sync_to_async(run_in_another_process)(
            "from project.demo.models import Order\n"
            f"Order.objects.create(user_id={bob.pk}, product_id={product.pk})\n"
            f"Order.objects.create(user_id={alice.pk}, product_id={product.pk}, quantity=4)",
            self.layers,
        )
        doc = (await receive(ws))["doc"]
        self.assertEqual([(o["user"], o["quantity"]) for o in doc["orders"]], [(alice.pk, 4)])
        await ws.disconnect()

    async def test_an_order_posted_to_another_server_process_is_pushed_to_a_customer_here(self) -> None:
        from django.contrib.auth import get_user_model

        from project.demo.models import Product

        from .utils import session_cookie

        alice = await sync_to_async(get_user_model().objects.create_user)("alice")
        product = await sync_to_async(Product.objects.create)(name="Brush", price="9.99")
        cookie = await session_cookie(alice)
        ws = await ws_connect("/ws/doc", cookie=cookie)
        self.assertEqual((await receive(ws))["doc"]["orders"], [])

        server, port = await sync_to_async(start_server_process)(self.layers)
        self.addCleanup(server.wait)
        self.addCleanup(server.terminate)

        def post_order() -> int:
            csrf = "a" * 32  # a CSRF secret of our choosing, sent as cookie and header
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request(
                "POST",
                "/api/orders",
                json.dumps({"product": product.pk, "quantity": 3}),
                {
                    "Content-Type": "application/json",
                    "Cookie": f"{cookie.decode()}; csrftoken={csrf}",
                    "X-CSRFToken": csrf,
                },
            )
            status = connection.getresponse().status
            connection.close()
            return status

        self.assertEqual(await sync_to_async(post_order)(), 201)
        doc = (await receive(ws))["doc"]
        self.assertEqual([(o["user"], o["quantity"]) for o in doc["orders"]], [(alice.pk, 3)])
        await ws.disconnect()
