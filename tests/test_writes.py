"""Where a write is observed (paintbrush.writes): one ``Write`` per save or delete, handed to
every observer once before and once after; the stored row read once for all of them (not
at all when the caller holds it: ``stored_as_is``, ``Write.of_read_row``); the version
assigned from it; Django's sign-in bookkeeping skipped."""

from __future__ import annotations

from typing import Any
from unittest import mock

from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import TestCase

from paintbrush import writes
from paintbrush.writes import Write, stored_as_is
from project.demo.models import Order, Todo

from .test_shop import make_shop

User = get_user_model()


class Spy:
    """An observer that records each call: ``before`` answers ``state``, ``after``
    records the state it was handed."""

    def __init__(self, state: Any = "state") -> None:
        self.state = state
        self.calls: list[tuple[str, Write, Any]] = []

    def before(self, write: Write) -> Any:
        self.calls.append(("before", write, None))
        return self.state

    def after(self, write: Write, state: Any) -> None:
        self.calls.append(("after", write, state))


class WriteTests(TestCase):
    def test_a_save_and_a_delete_are_each_one_write_seen_once_before_and_once_after(self) -> None:
        spy = Spy()
        with mock.patch.object(writes, "observers", [*writes.observers, spy]):
            todo = Todo.objects.create(title="a")
            todo.title = "b"
            todo.save()
            todo.delete()
        self.assertEqual([(call, state) for call, _, state in spy.calls], [("before", None), ("after", "state")] * 3)
        created, updated, deleted = (spy.calls[i][1] for i in (0, 2, 4))
        self.assertEqual([spy.calls[i][1] for i in (1, 3, 5)], [created, updated, deleted])  # the same Write
        kinds = [(w.creating, w.deleting) for w in (created, updated, deleted)]
        self.assertEqual(kinds, [(True, False), (False, False), (False, True)])
        self.assertTrue(all(w.instance is todo and w.model is Todo for w in (created, updated, deleted)))

    def test_an_observer_that_returns_none_is_not_called_after(self) -> None:
        spy = Spy(state=None)
        with mock.patch.object(writes, "observers", [*writes.observers, spy]):
            Todo.objects.create(title="a")
        self.assertEqual([call for call, _, _ in spy.calls], ["before"])

    def test_the_version_is_1_for_a_new_row_and_goes_up_only_when_a_save_changes_something(self) -> None:
        todo = Todo.objects.create(title="a")
        self.assertEqual(todo.version, 1)
        todo.save()  # nothing changed
        self.assertEqual(todo.version, 1)
        todo.done = True
        todo.save()
        todo.refresh_from_db()
        self.assertEqual(todo.version, 2)

    def test_changed_names_the_fields_a_save_changes_within_its_update_fields(self) -> None:
        todo = Todo.objects.create(title="a")
        stored = Todo.objects.get(pk=todo.pk)
        todo.title, todo.done = "b", True
        write = Write(Todo, todo, "default", deleting=False, creating=False, update_fields=frozenset({"title"}))
        self.assertEqual(write.changed, {"title"})
        whole = Write.of_read_row(Todo, todo, "default", stored=stored)
        self.assertEqual(whole.changed, {"title", "done"})

    def test_only_a_save_of_last_login_alone_is_login_bookkeeping(self) -> None:
        alice = User.objects.create_user("alice")

        def write(update_fields: set[str] | None) -> Write:
            fields = None if update_fields is None else frozenset(update_fields)
            return Write(User, alice, "default", deleting=False, creating=False, update_fields=fields)

        self.assertTrue(write({"last_login"}).is_login_bookkeeping)
        self.assertFalse(write({"last_login", "is_staff"}).is_login_bookkeeping)
        self.assertFalse(write(None).is_login_bookkeeping)


class StoredRowTests(TestCase):
    def setUp(self) -> None:
        self.admin, self.alice, self.bob, self.product = make_shop()

    def order(self, user: Any, **fields: Any) -> Order:
        return Order.objects.create(user=user, product=self.product, **fields)

    def test_a_save_reads_the_stored_row_once_for_every_receiver(self) -> None:
        # Documents (a user is in them) and access (flags) both need the previous row.
        self.alice.email = "alice@elsewhere.example"
        with self.assertNumQueries(2):  # the stored row, then the UPDATE
            self.alice.save()
        order = self.order(self.alice)
        order.quantity = 2
        # Events and documents share one read (locked, on PostgreSQL) before the UPDATE.
        with self.assertNumQueries(2):
            order.save()

    def test_signing_in_costs_no_extra_read_nor_document_notice(self) -> None:
        from django.contrib.auth.models import update_last_login

        with self.captureOnCommitCallbacks() as callbacks, self.assertNumQueries(1):  # the UPDATE
            update_last_login(type(self.alice), self.alice)
        self.assertEqual(callbacks, [])

    def test_a_row_said_to_be_stored_as_is_is_not_read_again(self) -> None:
        todo = Todo.objects.create(title="a")
        with transaction.atomic():
            row = Todo.objects.select_for_update().get(pk=todo.pk)
            stored_as_is(row)
            row.title = "b"
            with self.assertNumQueries(1):  # the UPDATE
                row.save()
        row.refresh_from_db()
        self.assertEqual((row.title, row.version), ("b", 2))

    def test_of_read_row_takes_the_row_given_and_reads_none(self) -> None:
        todo = Todo.objects.create(title="a")
        stored = Todo.objects.get(pk=todo.pk)
        todo.title = "b"
        write = Write.of_read_row(Todo, todo, "default", stored=stored)
        with self.assertNumQueries(0):
            self.assertIs(write.stored, stored)
            self.assertEqual(write.changed, {"title"})
        new = Write.of_read_row(Todo, Todo(title="c"), "default", stored=None, creating=True)
        with self.assertNumQueries(0):
            self.assertIsNone(new.stored)
            self.assertEqual(new.changed, {"id", "title", "done", "created_at"})  # every field but the version

    def test_recompare_computes_changed_again_after_the_instance_changes(self) -> None:
        todo = Todo.objects.create(title="a")
        write = Write.of_read_row(Todo, todo, "default", stored=Todo.objects.get(pk=todo.pk))
        self.assertEqual(write.changed, frozenset())
        todo.done = True  # as a bulk statement writes its values into the instance
        self.assertEqual(write.changed, frozenset())  # computed once, until told
        write.recompare()
        self.assertEqual(write.changed, {"done"})
