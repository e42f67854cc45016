"""Row versions are assigned in the database's order of commits: concurrent writers
never produce the same version, and each event's diff is against the row it replaced."""

from __future__ import annotations

import threading
from unittest import mock

from django.db import connection
from django.test import TransactionTestCase

from paintbrush import frames
from project.demo.models import Todo


class ConcurrentWriterTests(TransactionTestCase):
    def test_concurrent_writers_get_distinct_consecutive_versions(self) -> None:
        todo = Todo.objects.create(title="start")
        seen: list[int] = []
        errors: list[BaseException] = []
        lock = threading.Lock()
        start = threading.Barrier(3)

        def writer(name: str) -> None:
            try:
                start.wait()
                for i in range(15):
                    row = Todo.objects.get(pk=todo.pk)
                    row.title = f"{name}-{i}"
                    row.save()
                    with lock:
                        seen.append(row.version)
            except BaseException as exc:  # reported below, in the test's thread
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=writer, args=(n,)) for n in ("a", "b", "c")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(errors, [])
        self.assertEqual(sorted(seen), list(range(2, 47)))
        todo.refresh_from_db()
        self.assertEqual(todo.version, 46)

    def test_a_stale_instance_is_diffed_against_the_stored_row(self) -> None:
        todo = Todo.objects.create(title="a")
        stale = Todo.objects.get(pk=todo.pk)
        todo.done = True
        todo.save()  # version 2, done=True
        stale.title = "b"  # still believes done=False
        events: list[dict[str, object]] = []
        original = frames.update

        def capture(*args: object, **kwargs: object) -> dict[str, object]:
            event = original(*args, **kwargs)  # type: ignore[arg-type]
            events.append(event)
            return event

        with mock.patch.object(frames, "update", side_effect=capture):
            stale.save()
        # The stale save writes done=False back: the event must say so, at version 3.
        self.assertEqual(events[-1]["fields"], {"title": "b", "done": False})
        self.assertEqual(events[-1]["version"], 3)


class ExplicitPrimaryKeyTests(TransactionTestCase):
    def test_a_new_instance_with_the_pk_of_a_stored_row_updates_it(self) -> None:
        # Django saves Product(pk=...) as an UPDATE when the row exists: its version goes
        # on from the stored one, and the event is an update, not a create at version 1.
        from paintbrush.testing import capture_events
        from project.demo.models import Product

        product = Product.objects.create(name="Brush", price=1)
        Product.objects.filter(pk=product.pk).update(name="Brush")  # no change: version 1
        with capture_events() as events:
            Product(pk=product.pk, name="Broom", price=1).save()
        product.refresh_from_db()
        self.assertEqual(product.version, 2)
        self.assertEqual(
            [(e["action"], e.get("fields"), e["version"]) for e in events], [("update", {"name": "Broom"}, 2)]
        )
