"""Snapshots (paintbrush.snapshots): read once for every socket that asks for the same rows
at the same moment, never shared with a socket that asked after the read began, and an
outage answered ``unavailable`` on that subscription alone."""

from __future__ import annotations

import asyncio
import threading
from typing import Any
from unittest import mock

from asgiref.sync import sync_to_async
from django.db import OperationalError
from django.test import SimpleTestCase, TransactionTestCase, override_settings

from paintbrush import snapshots
from paintbrush.testing import connect, receive, subscribe
from project.demo.models import Todo

IN_MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@override_settings(CHANNEL_LAYERS=IN_MEMORY)
class SharedSnapshotTests(TransactionTestCase):
    async def test_sockets_asking_at_once_share_one_rendering(self) -> None:
        await sync_to_async(Todo.objects.bulk_create)([Todo(title=f"t{i}") for i in range(200)])
        sockets = [await connect() for _ in range(30)]
        before = dict(snapshots.stats)
        for ws in sockets:  # every request is in before the first read can finish
            await ws.send_json_to({"action": "opendoc", "resource": "todos", "snapshot": True})
        answers = []
        for ws in sockets:
            self.assertEqual((await receive(ws))["type"], "opened")
            answers.append(await receive(ws))
        rendered = snapshots.stats["rendered"] - before["rendered"]
        shared = snapshots.stats["shared"] - before["shared"]
        self.assertEqual(rendered + shared, 30)
        self.assertLessEqual(rendered, 3, f"{rendered} renderings for 30 sockets")
        titles = sorted(item["title"] for item in answers[0]["items"])
        self.assertEqual(titles, sorted(f"t{i}" for i in range(200)))
        self.assertTrue(all(answer == answers[0] for answer in answers))
        for ws in sockets:
            await ws.disconnect()

    async def test_users_who_see_different_rows_never_share(self) -> None:
        from django.contrib.auth import get_user_model

        from project.demo.models import Order, Product

        User = get_user_model()
        alice = await sync_to_async(User.objects.create_user)("alice")
        bob = await sync_to_async(User.objects.create_user)("bob")
        product = await sync_to_async(Product.objects.create)(name="p", price="1.00")
        await sync_to_async(Order.objects.create)(user=alice, product=product, quantity=1)
        await sync_to_async(Order.objects.create)(user=bob, product=product, quantity=2)
        a, b = await connect(user=alice), await connect(user=bob)
        for ws in (a, b):
            await ws.send_json_to({"action": "opendoc", "resource": "orders", "snapshot": True})
        for ws, quantity in ((a, 1), (b, 2)):
            self.assertEqual((await receive(ws))["type"], "opened")
            self.assertEqual([item["quantity"] for item in (await receive(ws))["items"]], [quantity])
            await ws.disconnect()

    @override_settings(PAINTBRUSH={"DATABASE_RETRY_AFTER_SECONDS": 1})
    async def test_a_database_outage_answers_that_subscription_and_keeps_the_socket(self) -> None:
        # It used to close the whole socket with 1013.
        ws = await connect()
        await subscribe(ws, "checklists")
        with (
            mock.patch.object(snapshots, "_render", side_effect=OperationalError("the database is down")),
            self.assertLogs("paintbrush", "WARNING"),
        ):
            await ws.send_json_to({"action": "opendoc", "resource": "todos", "snapshot": True})
            self.assertEqual((await receive(ws))["type"], "opened")
            error = await receive(ws)
        self.assertEqual((error["error"], error["retry_after"]), ("unavailable", 1.0))
        # retry_after later, the resource is sent resync: the client opens it again.
        resync = await receive(ws, timeout=5)
        self.assertEqual((resync["type"], resync["resource"]), ("resync", "todos"))
        self.assertEqual(await subscribe(ws, "todos", snapshot=True), [])
        await ws.disconnect()

    @override_settings(PAINTBRUSH={"DATABASE_RETRY_AFTER_SECONDS": 1})
    async def test_a_refused_permission_check_subscribes_nothing_and_is_retried(self) -> None:
        from paintbrush.hub import get_hub

        ws = await connect()
        with (
            mock.patch.object(snapshots, "listing", side_effect=OperationalError("the database is down")),
            self.assertLogs("paintbrush", "WARNING"),
        ):
            await ws.send_json_to({"action": "opendoc", "resource": "todos", "snapshot": True})
            self.assertEqual((await receive(ws))["error"], "unavailable")
        from channels.layers import get_channel_layer

        self.assertNotIn("todos", str(list(get_hub(get_channel_layer()).members)))
        self.assertEqual((await receive(ws, timeout=5))["type"], "resync")
        await ws.disconnect()


class _View:
    """A stand-in view whose listing waits for ``gate`` (the read in progress)."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.gate = gate
        self.reads = 0

    def get_queryset(self) -> list[dict[str, Any]]:
        self.reads += 1
        if self.gate is not None:
            self.gate.wait(5)
        return [{"id": 1, "title": "a"}]

    def filter_queryset(self, queryset: Any) -> Any:
        return queryset

    def get_serializer_class(self) -> Any:
        class Serializer:
            def __init__(self, rows: Any, many: bool, context: dict[str, Any]) -> None:
                self.data = rows

        return Serializer


class BatchTests(SimpleTestCase):
    async def test_a_socket_never_shares_a_read_that_began_before_it_asked(self) -> None:
        # A change committed between that read and the socket's join would be in
        # neither the snapshot nor its events.
        gate = threading.Event()
        first_view = _View(gate)
        first = asyncio.ensure_future(snapshots.frames_for("todos", first_view, "key"))
        while not first_view.reads:  # the first read has begun (it waits on the gate)
            await asyncio.sleep(0.01)
        later_view = _View()
        later = asyncio.ensure_future(snapshots.frames_for("todos", later_view, "key"))
        gate.set()
        await asyncio.wait_for(asyncio.gather(first, later), 10)
        self.assertEqual((first_view.reads, later_view.reads), (1, 1))  # a read of its own

    async def test_one_waiter_going_away_does_not_cancel_the_others(self) -> None:
        gate = threading.Event()
        view = _View(gate)
        gone = asyncio.ensure_future(snapshots.frames_for("todos", view, "key2"))
        stays = asyncio.ensure_future(snapshots.frames_for("todos", view, "key2"))
        await asyncio.sleep(0)
        gone.cancel()
        gate.set()
        self.assertEqual(len(await asyncio.wait_for(stays, 10)), 1)
        self.assertEqual(view.reads, 1)
