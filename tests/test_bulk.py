"""Bulk writes of live models (paintbrush.bulk): QuerySet.update(), bulk_create(),
bulk_update() and QuerySet.delete() publish what the equivalent saves would, events and
role documents alike, after commit only, with a bounded number of queries per call."""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from unittest import mock

from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import NotSupportedError, connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Concat
from django.test import TransactionTestCase, override_settings
from django.test.utils import CaptureQueriesContext

from paintbrush import frames
from paintbrush.bulk import LiveManager, LiveQuerySet
from paintbrush.resources import site
from project.demo.models import Order, Product, Todo

from .test_shop import make_shop
from .utils import IN_MEMORY, receive, subscribe, ws_connect


def todos(*titles: str, **fields: Any) -> list[Todo]:
    return [Todo.objects.create(title=title, **fields) for title in titles]


def update_event(todo: Todo, fields: dict[str, Any], version: int) -> dict[str, Any]:
    return {"resource": "todos", "action": "update", "id": str(todo.pk), "fields": fields, "version": version}


@override_settings(CHANNEL_LAYERS=IN_MEMORY)
class BulkEventTests(TransactionTestCase):
    async def events(self, ws: WebsocketCommunicator, count: int) -> dict[str, Any]:
        """The next ``count`` events, by row id (a bulk write publishes in pk order)."""
        events = [await receive(ws) for _ in range(count)]
        by_id = {event.get("id") or event["item"]["id"]: event for event in events}
        self.assertEqual(len(by_id), count, events)
        return by_id

    async def assert_next_is_the_marker(self, ws: WebsocketCommunicator) -> None:
        """Nothing else was published before a create made now."""
        marker = await sync_to_async(Todo.objects.create)(title="marker")
        event = await receive(ws)
        self.assertEqual((event["action"], event["item"]["id"]), ("create", str(marker.pk)))

    async def versions(self) -> dict[str, int]:
        def read() -> dict[str, int]:
            return {t.title: t.version for t in Todo.objects.all()}

        return await sync_to_async(read)()

    async def test_update_publishes_the_changed_fields_of_each_changed_row_at_version_plus_one(self) -> None:
        a, b = await sync_to_async(todos)("a", "b")
        await sync_to_async(todos)("c", done=True)
        ws = await ws_connect()
        await subscribe(ws, "todos")
        count = await Todo.objects.filter(title__in=["a", "b", "c"]).aupdate(done=True)  # the async variant too
        self.assertEqual(count, 3)
        events = await self.events(ws, 2)
        self.assertEqual(events[str(a.pk)], update_event(a, {"done": True}, 2))
        self.assertEqual(events[str(b.pk)], update_event(b, {"done": True}, 2))
        await self.assert_next_is_the_marker(ws)  # c was already done: nothing for it
        self.assertEqual(await self.versions(), {"a": 2, "b": 2, "c": 1, "marker": 1})
        await ws.disconnect()

    async def test_an_update_by_the_field_it_changes_and_by_expression_publishes_the_values_written(self) -> None:
        a, b = await sync_to_async(todos)("a", "b")
        ws = await ws_connect()
        await subscribe(ws, "todos")
        # The filter no longer matches once written: the rows are found again by pk.
        await sync_to_async(Todo.objects.filter(done=False).update)(done=True, title=Concat(F("title"), Value("!")))
        events = await self.events(ws, 2)
        self.assertEqual(events[str(a.pk)], update_event(a, {"title": "a!", "done": True}, 2))
        self.assertEqual(events[str(b.pk)], update_event(b, {"title": "b!", "done": True}, 2))
        await ws.disconnect()

    async def test_bulk_create_publishes_a_create_per_row_at_version_1(self) -> None:
        ws = await ws_connect()
        await subscribe(ws, "todos")
        created = await sync_to_async(Todo.objects.bulk_create)([Todo(title="a"), Todo(title="b", done=True)])
        events = await self.events(ws, 2)
        for todo in created:
            item = (await self.async_client.get(f"/api/todos/{todo.pk}")).json()
            self.assertEqual(item["version"], 1)
            self.assertEqual(events[str(todo.pk)], {"resource": "todos", "action": "create", "item": item})
        await ws.disconnect()

    async def test_bulk_update_publishes_changed_rows_and_sets_their_version(self) -> None:
        a, b = await sync_to_async(todos)("a", "b")
        ws = await ws_connect()
        await subscribe(ws, "todos")
        a.title, a.done = "a2", True
        b.done = False  # as stored: no change
        count = await sync_to_async(Todo.objects.bulk_update)([a, b], ["title", "done"])
        self.assertEqual(count, 2)
        self.assertEqual(await receive(ws), update_event(a, {"title": "a2", "done": True}, 2))
        await self.assert_next_is_the_marker(ws)
        self.assertEqual((a.version, b.version), (2, 1))
        self.assertEqual(await self.versions(), {"a2": 2, "b": 1, "marker": 1})
        await ws.disconnect()

    async def test_bulk_update_with_an_expression_publishes_the_value_written(self) -> None:
        (a,) = await sync_to_async(todos)("a")
        ws = await ws_connect()
        await subscribe(ws, "todos")
        a.title = Concat(F("title"), Value("?"))
        await sync_to_async(Todo.objects.bulk_update)([a], ["title"])
        self.assertEqual(await receive(ws), update_event(a, {"title": "a?"}, 2))
        await ws.disconnect()

    async def test_queryset_delete_publishes_a_delete_per_row_at_one_more_version(self) -> None:
        a, b = await sync_to_async(todos)("a", "b")
        (kept,) = await sync_to_async(todos)("kept")
        a.done = True
        await sync_to_async(a.save)()  # version 2
        ws = await ws_connect()
        await subscribe(ws, "todos")
        deleted = await sync_to_async(Todo.objects.exclude(pk=kept.pk).delete)()
        self.assertEqual(deleted, (2, {"demo.Todo": 2}))
        events = await self.events(ws, 2)
        self.assertEqual(events[str(a.pk)], {"resource": "todos", "action": "delete", "id": str(a.pk), "version": 3})
        self.assertEqual(events[str(b.pk)], {"resource": "todos", "action": "delete", "id": str(b.pk), "version": 2})
        await self.assert_next_is_the_marker(ws)
        await ws.disconnect()

    async def test_a_rolled_back_bulk_write_publishes_nothing(self) -> None:
        await sync_to_async(todos)("a", "b")
        ws = await ws_connect()
        await subscribe(ws, "todos")

        def rolled_back() -> None:
            with self.assertRaises(RuntimeError), transaction.atomic():
                Todo.objects.update(done=True)
                Todo.objects.bulk_create([Todo(title="never")])
                Todo.objects.filter(title="a").delete()
                raise RuntimeError("abort")

        await sync_to_async(rolled_back)()
        await self.assert_next_is_the_marker(ws)
        self.assertEqual(await self.versions(), {"a": 1, "b": 1, "marker": 1})
        await ws.disconnect()

    async def test_a_row_an_update_takes_out_of_the_resources_rows_is_deleted_for_subscribers(self) -> None:
        # The resource's row filter is read while the row is still stored as it was,
        # before the statement, exactly as for a save: the row leaves as a delete.
        a, _ = await sync_to_async(todos)("a", "b")
        resource = site.for_model(Todo)
        with mock.patch.object(resource, "queryset", Todo.objects.filter(done=False)):
            ws = await ws_connect()
            await subscribe(ws, "todos")
            await sync_to_async(Todo.objects.filter(pk=a.pk).update)(done=True)
            self.assertEqual(
                await receive(ws), {"resource": "todos", "action": "delete", "id": str(a.pk), "version": 2}
            )
            await sync_to_async(Todo.objects.filter(pk=a.pk).update)(done=False)
            event = await receive(ws)
            self.assertEqual((event["action"], event["item"]["id"], event["item"]["version"]), ("create", str(a.pk), 3))
        await ws.disconnect()

    async def test_bulk_create_on_a_backend_that_returns_no_primary_keys_saves_each_row(self) -> None:
        admin, *_ = await sync_to_async(make_shop)()
        ws = await ws_connect(user=admin)
        await subscribe(ws, "products")
        features = type(connection.features)
        with mock.patch.object(features, "can_return_rows_from_bulk_insert", new_callable=mock.PropertyMock) as can:
            can.return_value = False
            created = await sync_to_async(Product.objects.bulk_create)(
                [Product(name="a", price=Decimal("1.00")), Product(name="b", price=Decimal("2.00"))]
            )
        self.assertTrue(all(p.pk is not None for p in created))
        for product in created:
            event = await receive(ws)
            self.assertEqual((event["action"], event["item"]["id"]), ("create", product.pk))
            self.assertEqual(event["item"]["version"], 1)
        await ws.disconnect()


class BulkRulesTests(TransactionTestCase):
    def test_the_version_cannot_be_written_in_bulk(self) -> None:
        (a,) = todos("a")
        with self.assertRaises(ValueError):
            Todo.objects.update(version=7)
        with self.assertRaises(ValueError):
            Todo.objects.bulk_update([a], ["version"])
        self.assertEqual(Todo.objects.get().version, 1)

    def test_bulk_create_with_conflict_handling_is_refused(self) -> None:
        with self.assertRaises(NotSupportedError):
            Todo.objects.bulk_create([Todo(title="a")], ignore_conflicts=True)
        with self.assertRaises(NotSupportedError):
            Todo.objects.bulk_create(
                [Todo(title="a")], update_conflicts=True, update_fields=["title"], unique_fields=["id"]
            )
        self.assertFalse(Todo.objects.exists())

    def test_managers_and_related_managers_are_live(self) -> None:
        _, alice, _, _ = make_shop()
        self.assertIsInstance(Todo.objects, LiveManager)
        self.assertIsInstance(Todo.objects.filter(done=True), LiveQuerySet)
        self.assertIsInstance(alice.orders.all(), LiveQuerySet)

    def statements(self, write: Callable[[], object]) -> int:
        """Statements ``write`` runs, its transaction's BEGIN and COMMIT aside."""
        with CaptureQueriesContext(connection) as queries:
            write()
        return sum(1 for q in queries.captured_queries if q["sql"].split()[0] not in {"BEGIN", "COMMIT"})

    def test_statements_per_call_do_not_grow_with_the_number_of_rows(self) -> None:
        def calls(size: int) -> dict[str, int]:
            Todo.objects.all().delete()
            objs = [Todo(title=f"t{i}") for i in range(size)]
            counts = {"bulk_create": self.statements(lambda: Todo.objects.bulk_create(objs))}
            counts["update"] = self.statements(lambda: Todo.objects.update(done=True))
            counts["bulk_update, unchanged"] = self.statements(lambda: Todo.objects.bulk_update(objs, ["title"]))
            for obj in objs:
                obj.title += "!"
            counts["bulk_update"] = self.statements(lambda: Todo.objects.bulk_update(objs, ["title"]))
            counts["delete"] = self.statements(lambda: Todo.objects.filter(done=True).delete())
            return counts

        # update: lock and read, UPDATE, read again, version UPDATE (none if nothing changed);
        # delete: lock and read, DELETE.
        expected = {"bulk_create": 1, "update": 4, "bulk_update, unchanged": 3, "bulk_update": 4, "delete": 2}
        self.assertEqual(calls(1), expected)
        self.assertEqual(calls(20), expected)

    def test_more_rows_than_one_pk_list_holds_are_written_in_batches(self) -> None:
        # SQLite takes 500 pks a list, PostgreSQL any number: a list of 5 tries both.
        size = 6
        Todo.objects.bulk_create(Todo(title=f"t{i}") for i in range(size))
        small = mock.patch.object(connection.ops, "bulk_batch_size", return_value=5)
        self.enterContext(small)
        # lock and read once; then UPDATE, read again and version UPDATE per batch of pks
        self.assertEqual(self.statements(lambda: Todo.objects.update(done=True)), 1 + 3 * 2)
        self.assertEqual(set(Todo.objects.values_list("done", "version")), {(True, 2)})
        # lock and read once; Django's deletion then deletes 100 rows per DELETE
        self.assertEqual(self.statements(lambda: Todo.objects.all().delete()), 1 + -(-size // 100))
        self.assertFalse(Todo.objects.exists())


class ConcurrentBulkWriterTests(TransactionTestCase):
    def test_bulk_writes_and_saves_of_the_same_rows_get_distinct_consecutive_versions(self) -> None:
        rows = todos("a", "b")
        published: list[tuple[str, int]] = []
        errors: list[BaseException] = []
        start = threading.Barrier(3)
        original = frames.update

        def capture(
            name: str, pk: str, fields: dict[str, Any], version: int | None, where: Any = None
        ) -> dict[str, Any]:
            assert version is not None
            if where is None:  # todos are scoped by done too: count the unscoped copy
                published.append((pk, version))
            return original(name, pk, fields, version, where)

        def bulk() -> None:
            for _ in range(10):
                Todo.objects.update(title=Concat(F("title"), Value("u")))

        def saves() -> None:
            for _ in range(10):
                for todo in rows:
                    row = Todo.objects.get(pk=todo.pk)
                    row.title += "s"
                    row.save()

        def bulk_updates() -> None:
            for _ in range(10):
                objs = list(Todo.objects.all())
                for obj in objs:
                    obj.title += "b"
                Todo.objects.bulk_update(objs, ["title"])

        def run(writer: Callable[[], None]) -> None:
            try:
                start.wait()
                writer()
            except BaseException as exc:  # reported below, in the test's thread
                errors.append(exc)
            finally:
                connection.close()

        with mock.patch.object(frames, "update", side_effect=capture):
            threads = [threading.Thread(target=run, args=(w,)) for w in (bulk, saves, bulk_updates)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        self.assertEqual(errors, [])
        for todo in rows:
            # 30 committed changes of each row: versions 2..31, each published once.
            self.assertEqual(sorted(v for pk, v in published if pk == str(todo.pk)), list(range(2, 32)))
            self.assertEqual(Todo.objects.get(pk=todo.pk).version, 31)


@override_settings(CHANNEL_LAYERS=IN_MEMORY, PAINTBRUSH={"DOC_COALESCE_SECONDS": 0.05})
class BulkDocumentTests(TransactionTestCase):
    async def test_a_bulk_status_update_pushes_the_customers_document_once(self) -> None:
        _, alice, _, product = await sync_to_async(make_shop)()
        for _ in range(3):
            await sync_to_async(Order.objects.create)(user=alice, product=product)
        ws = await ws_connect("/ws/doc", user=alice)
        doc = (await receive(ws))["doc"]
        self.assertEqual({o["status"] for o in doc["orders"]}, {"pending"})
        await sync_to_async(Order.objects.filter(user=alice).update)(status=Order.Status.PAID)
        doc = (await receive(ws))["doc"]
        self.assertEqual([(o["status"], o["version"]) for o in doc["orders"]], [("paid", 2)] * 3)
        marker = await sync_to_async(Order.objects.create)(user=alice, product=product, quantity=7)
        # The very next push is the marker's: the bulk update gave exactly one.
        self.assertEqual((await receive(ws))["doc"]["orders"][-1]["id"], marker.pk)
        await ws.disconnect()
