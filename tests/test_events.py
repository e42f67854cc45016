"""Delta events (docs/protocol.md, section 2): shapes, changed fields only, after commit only,
from every writer, isolated per resource, serialized and encoded once per write."""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client, TransactionTestCase, override_settings

from paintbrush import deltas, encoding
from paintbrush.testing import connect, receive, subscribe
from project.demo.models import Checklist, Todo

from .utils import IN_MEMORY


@override_settings(CHANNEL_LAYERS=IN_MEMORY)
class EventTests(TransactionTestCase):
    async def post(self, path: str, data: Any) -> Any:
        response = await self.async_client.post(path, data, content_type="application/json")
        self.assertEqual(response.status_code, 201, response.content)
        return response.json()

    async def test_create_event_carries_the_item_as_rest_renders_it(self) -> None:
        ws = await connect()
        await subscribe(ws, "todos")
        item = await self.post("/api/todos", {"title": "milk"})
        event = await receive(ws)
        self.assertEqual(event, {"resource": "todos", "action": "create", "item": item})
        self.assertEqual(item["version"], 1)
        self.assertIs(item["done"], False)
        await ws.disconnect()

    async def test_update_event_holds_only_changed_fields_and_the_new_version(self) -> None:
        todo = await sync_to_async(Todo.objects.create)(title="milk")
        ws = await connect()
        await subscribe(ws, "todos")
        response = await self.async_client.put(
            f"/api/todos/{todo.pk}", {"title": "milk", "done": True}, content_type="application/json"
        )
        self.assertEqual(response.status_code, 200)
        event = await receive(ws)
        self.assertEqual(
            event, {"resource": "todos", "action": "update", "id": str(todo.pk), "fields": {"done": True}, "version": 2}
        )
        await ws.disconnect()

    async def test_delete_event_has_the_id_and_one_more_than_the_last_version(self) -> None:
        todo = await sync_to_async(Todo.objects.create)(title="milk")
        todo.done = True
        await sync_to_async(todo.save)()
        ws = await connect()
        await subscribe(ws, "todos")
        response = await self.async_client.delete(f"/api/todos/{todo.pk}/")
        self.assertEqual(response.status_code, 204)
        self.assertEqual(await receive(ws), {"resource": "todos", "action": "delete", "id": str(todo.pk), "version": 3})
        await ws.disconnect()

    async def test_a_save_that_changes_nothing_publishes_nothing_and_keeps_the_version(self) -> None:
        todo = await sync_to_async(Todo.objects.create)(title="milk")
        ws = await connect()
        await subscribe(ws, "todos")
        await sync_to_async(todo.save)()  # no change
        todo.title = "oat milk"
        await sync_to_async(todo.save)()
        # The next frame is the rename, at version 2: the no-op neither published nor bumped.
        self.assertEqual(
            await receive(ws),
            {
                "resource": "todos",
                "action": "update",
                "id": str(todo.pk),
                "fields": {"title": "oat milk"},
                "version": 2,
            },
        )
        await ws.disconnect()

    async def test_a_rolled_back_transaction_publishes_nothing(self) -> None:
        ws = await connect()
        await subscribe(ws, "todos")

        def rolled_back() -> None:
            with self.assertRaises(RuntimeError), transaction.atomic():
                Todo.objects.create(title="never")
                raise RuntimeError("abort")

        await sync_to_async(rolled_back)()
        kept = await sync_to_async(Todo.objects.create)(title="kept")
        event = await receive(ws)
        self.assertEqual(event["item"]["id"], str(kept.pk))
        self.assertEqual(await sync_to_async(Todo.objects.filter(title="never").count)(), 0)
        await ws.disconnect()

    async def test_events_are_sent_after_commit_not_at_save(self) -> None:
        ws = await connect()
        await subscribe(ws, "todos")
        layer = get_channel_layer()
        sent_inside: list[bool] = []

        def write() -> None:
            with mock.patch.object(layer, "group_send", wraps=layer.group_send) as spy, transaction.atomic():
                Todo.objects.create(title="a")
                Todo.objects.create(title="b")
                sent_inside.append(spy.called)

        await sync_to_async(write)()
        self.assertEqual(sent_inside, [False])
        self.assertEqual((await receive(ws))["item"]["title"], "a")
        self.assertEqual((await receive(ws))["item"]["title"], "b")
        await ws.disconnect()

    async def test_a_save_with_update_fields_bumps_and_publishes(self) -> None:
        todo = await sync_to_async(Todo.objects.create)(title="milk")
        ws = await connect()
        await subscribe(ws, "todos")
        todo.done = True
        await sync_to_async(todo.save)(update_fields=["done"])
        event = await receive(ws)
        self.assertEqual((event["fields"], event["version"]), ({"done": True}, 2))
        self.assertEqual((await sync_to_async(Todo.objects.get)(pk=todo.pk)).version, 2)
        await ws.disconnect()

    async def test_a_save_through_the_django_admin_publishes(self) -> None:
        todo = await sync_to_async(Todo.objects.create)(title="milk")
        admin = await sync_to_async(get_user_model().objects.create_superuser)("root", "r@example.com", "pw")
        ws = await connect()
        await subscribe(ws, "todos")

        def save_in_admin() -> int:
            client = Client()
            client.force_login(admin)
            response = client.post(f"/admin/demo/todo/{todo.pk}/change/", {"title": "milk (admin)", "done": "on"})
            return response.status_code

        self.assertEqual(await sync_to_async(save_in_admin)(), 302)
        event = await receive(ws)
        self.assertEqual(event["fields"], {"title": "milk (admin)", "done": True})
        self.assertEqual(event["version"], 2)
        await ws.disconnect()

    async def test_closedoc_stops_that_resource_only(self) -> None:
        ws = await connect()
        await subscribe(ws, "todos")
        await subscribe(ws, "checklists")
        await ws.send_json_to({"action": "closedoc", "resource": "todos"})
        self.assertEqual(await receive(ws), {"type": "closed", "resource": "todos"})
        await sync_to_async(Todo.objects.create)(title="unseen")
        checklist = await sync_to_async(Checklist.objects.create)(title="seen")
        event = await receive(ws)
        self.assertEqual((event["resource"], event["item"]["id"]), ("checklists", str(checklist.pk)))
        await ws.disconnect()

    async def test_resources_are_isolated_from_each_other(self) -> None:
        ws = await connect()
        await subscribe(ws, "checklists")
        await sync_to_async(Todo.objects.create)(title="other resource")
        checklist = await sync_to_async(Checklist.objects.create)(title="mine")
        event = await receive(ws)
        self.assertEqual((event["resource"], event["item"]["id"]), ("checklists", str(checklist.pk)))
        await ws.disconnect()

    async def test_snapshot_lists_the_rows_as_get_returns_them_before_any_event(self) -> None:
        await sync_to_async(Todo.objects.create)(title="one")
        await sync_to_async(Todo.objects.create)(title="two")
        listed = (await self.async_client.get("/api/todos")).json()
        ws = await connect()
        items = await subscribe(ws, "todos", snapshot=True)
        self.assertEqual(items, listed)
        await ws.disconnect()

    async def test_two_sockets_both_receive(self) -> None:
        first, second = await connect(), await connect()
        await subscribe(first, "todos")
        await subscribe(second, "todos")
        item = await self.post("/api/todos", {"title": "shared"})
        self.assertEqual((await receive(first))["item"], item)
        self.assertEqual((await receive(second))["item"], item)
        await first.disconnect()
        await second.disconnect()

    async def test_one_write_is_rendered_and_encoded_once_whatever_the_subscribers(self) -> None:
        # A resource without scopes: once. (With scopes, once per scope: test_scopes.)
        sockets = [await connect() for _ in range(40)]
        for ws in sockets:
            await subscribe(ws, "checklists")
        layer = get_channel_layer()
        with (
            mock.patch.object(deltas, "render", wraps=deltas.render) as render,
            mock.patch.object(encoding, "encode", wraps=encoding.encode) as encode,
            mock.patch.object(layer, "group_send", wraps=layer.group_send) as group_send,
        ):
            await sync_to_async(Checklist.objects.create)(title="fan-out")
            texts = {(await ws.receive_from(timeout=5)) for ws in sockets}
        self.assertEqual(render.call_count, 1)
        self.assertEqual(encode.call_count, 1)
        self.assertEqual(group_send.call_count, 1)  # one channel message, not one per socket
        self.assertEqual(len(texts), 1)
        self.assertEqual(json.loads(texts.pop())["item"]["title"], "fan-out")
        for ws in sockets:
            await ws.disconnect()

    async def test_an_update_renders_before_and_after_once_and_encodes_once(self) -> None:
        checklist = await sync_to_async(Checklist.objects.create)(title="x")
        sockets = [await connect() for _ in range(10)]
        for ws in sockets:
            await subscribe(ws, "checklists")
        checklist.checked = True
        with (
            mock.patch.object(deltas, "render", wraps=deltas.render) as render,
            mock.patch.object(encoding, "encode", wraps=encoding.encode) as encode,
        ):
            await sync_to_async(checklist.save)()
            for ws in sockets:
                self.assertEqual((await receive(ws))["fields"], {"checked": True})
        self.assertEqual((render.call_count, encode.call_count), (2, 1))
        for ws in sockets:
            await ws.disconnect()

    async def test_nothing_stays_in_the_channel_layer_after_the_last_socket_leaves(self) -> None:
        ws = await connect()
        await subscribe(ws, "todos")
        await subscribe(ws, "checklists")
        layer = get_channel_layer()
        self.assertEqual(len(layer.groups), 2)
        await ws.disconnect()
        self.assertEqual(layer.groups, {})


@override_settings(CHANNEL_LAYERS=IN_MEMORY)
class BurstTests(TransactionTestCase):
    async def test_a_burst_larger_than_the_layer_capacity_loses_no_event(self) -> None:
        # The in-memory layer's default capacity is 100 messages per channel; it drops
        # silently beyond. The hub drains its channel into a local queue at once.
        sockets = [await connect() for _ in range(20)]
        for ws in sockets:
            await subscribe(ws, "todos")

        def burst() -> None:
            with transaction.atomic():
                for i in range(250):
                    Todo.objects.create(title=f"t{i}")

        await sync_to_async(burst)()
        for ws in sockets:
            titles = [(await receive(ws))["item"]["title"] for _ in range(250)]
            self.assertEqual(titles, [f"t{i}" for i in range(250)])
        for ws in sockets:
            await ws.disconnect()
