"""
Bulk writes of live models: ``LiveModel.objects`` (a ``LiveManager``) and its querysets
publish what the equivalent saves and deletes would, through the same write lifecycle
(``paintbrush.writes``): one ``Write`` per affected row, handed to every observer, so
events, role-document notices and access notices all follow, once per row, after
commit, at the right versions. A rolled-back transaction publishes nothing.

    Todo.objects.filter(done=False).update(done=True)    # update events, changed rows only
    Todo.objects.bulk_create([Todo(title="a"), ...])     # create events, version 1
    Todo.objects.bulk_update(todos, ["title"])           # update events, changed rows only
    Todo.objects.filter(done=True).delete()              # delete events, version + 1

Each call runs in ``transaction.atomic`` and first reads the rows it will write under a
row lock (``SELECT ... FOR UPDATE`` where the database has it, in pk order), so the
previous state compared with, and the version assigned, are those of the rows replaced,
even with concurrent writers; the write itself is restricted to the rows locked.

As for a save, observers see each write before the statement (the row still stored as
it was: ``Resource.event_keys`` may query it) and after it. For that, the values about
to be written are worked out first: plain values in Python, expressions (``F("n") +
1``, ``Concat(...)``) by the read that locks the rows. After the statement the rows are
read again, and what is published is what was written: a row the statement changed
gets version + 1 (one extra UPDATE for all of them) and its event; a row it left as it
was publishes nothing and keeps its version. Only a change that could not be worked out
beforehand (an expression assigned to an object given to ``bulk_update``) is shown to
the observers after the statement alone (``paintbrush.writes.observe``).

Cost. Statements per call do not grow with the number of rows, up to the length of one
``pk IN (...)`` list (``connection.ops.bulk_batch_size``: 500 on SQLite, unbounded on
PostgreSQL); past it, the statements marked * repeat per 500 rows:

    update()       4: the locking read; the UPDATE*; the read again*; the version
                   UPDATE* (none when no row changed)
    bulk_update()  the same 4, the locking read* too (Django may split its UPDATE further)
    bulk_create()  Django's INSERTs only: no read (pk and version 1 are known)
    delete()       the locking read, then Django's deletion: one DELETE per 100 rows,
                   and the reads of related rows; a row reached by a cascade is read
                   once more, as for ``Model.delete()``

Per row, in Python: a copy and a comparison; per changed row, two renders with the
resource's serializer (before and after; one for a create, none for a delete), one
JSON encode, and after commit one channel-layer message per event key of the row and
one notice per affected document group. The shipped observers run no query per row
(a resource with a ``queryset`` runs its ``event_keys`` query, twice per changed row).

Not covered. ``bulk_create(ignore_conflicts=True)`` and ``update_conflicts=True``
raise ``NotSupportedError``: which rows were inserted, and which updated, cannot be
known cheaply. A backend that cannot return primary keys from a bulk insert gets one
``save()`` per object (one INSERT per row). Writes that do not go through these
querysets are not observed: raw SQL, and Django's own writes through the model's base
manager (a plain ``Manager``): ``add()`` on a reverse foreign key (``bulk=True``, the
default; ``bulk=False`` saves each row) and the ``on_delete=SET_NULL`` / ``SET_DEFAULT``
/ ``SET(...)`` updates of the deletion collector.

A model that declares its own manager keeps all of this by deriving it from
``LiveManager`` (or ``LiveQuerySet``):

    class TodoManager(LiveManager["Todo"]):
        def open(self) -> LiveQuerySet["Todo"]:
            return self.filter(done=False)
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.core.exceptions import FieldError, ValidationError
from django.db import NotSupportedError, connections, models, transaction
from django.db.models import ExpressionWrapper, F
from django.db.models.deletion import Collector

from .fields import version_field
from .writes import Write, observe, stored_as_is

__all__ = ["LiveManager", "LiveQuerySet"]

_M = TypeVar("_M", bound=models.Model)

#: Prefix of the annotations that evaluate an update's expressions on the locked rows.
_NEW = "_paintbrush_new_"


def _refuse_version(model: type[models.Model], fields: Iterable[models.Field[Any, Any]]) -> None:
    version = version_field(model)
    if version is not None and any(f.attname == version for f in fields):
        raise ValueError(f"{model.__name__}.{version} is assigned by Paintbrush: it cannot be written in bulk.")


def _chunks(db: str, pks: list[Any]) -> list[list[Any]]:
    """``pks`` in lists short enough for one ``pk IN (...)`` (at least one list)."""
    size = max(1, connections[db].ops.bulk_batch_size(["pk"], pks))
    return [pks[i : i + size] for i in range(0, max(len(pks), 1), size)]


def _field(model: type[models.Model], name: str, error: Callable[[str], Exception]) -> models.Field[Any, Any]:
    """The concrete field ``name`` writes; ``error`` (Django's, for the caller) if none."""
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field) or not field.concrete or field.many_to_many:
        raise error(name)
    return field


def _python(field: models.Field[Any, Any], value: Any) -> Any:
    """``value`` as the field's attribute will hold it once read back."""
    if isinstance(value, models.Model):  # a related object given for a foreign key
        return value.pk
    try:
        return field.to_python(value)
    except ValidationError:
        return value  # the statement will tell; the row read back is what is published


def _predict(obj: models.Model, fields: list[models.Field[Any, Any]]) -> dict[str, Any] | None:
    """The attribute values ``bulk_update`` is about to write for ``obj``; None if an
    expression makes them known only once read back."""
    new = {}
    for field in fields:
        value = getattr(obj, field.attname)
        if hasattr(value, "resolve_expression"):
            return None
        new[field.attname] = _python(field, value)
    return new


@dataclass
class _Row:
    stored: models.Model
    #: Observed before the statement (its values predicted), or None.
    write: Write | None = None
    finish: Callable[[], None] | None = None


class LiveQuerySet(models.QuerySet[_M]):
    """A queryset whose bulk writes publish like saves (see the module docstring)."""

    # -- helpers --------------------------------------------------------------------------

    def _write_db(self) -> str:
        self._for_write = True  # as QuerySet.update does
        return self.db

    def _plain(self, db: str) -> models.QuerySet[_M]:
        """A plain queryset of the model on ``db``: its writes are not observed again."""
        return models.QuerySet(self.model, using=db)

    def _pks(self) -> models.QuerySet[_M, dict[str, Any]]:
        """This queryset's primary keys, as a subquery."""
        inner = self.all()
        inner.query.clear_ordering(force=True)
        inner.query.select_for_update = False
        return inner.values("pk")

    def _lock(self, db: str, *pk_filters: Any, **annotations: Any) -> dict[Any, _M]:
        """The rows whose pk is in each of ``pk_filters``, read under a row lock, by pk."""
        rows = self._plain(db)
        for pks in pk_filters:
            rows = rows.filter(pk__in=pks)
        if annotations:
            rows = rows.annotate(**annotations)
        if connections[db].features.has_select_for_update:
            rows = rows.select_for_update()
        return {row.pk: row for row in rows.order_by("pk")}  # one lock order: no deadlocks

    def _begin(self, db: str, stored: _M, new: dict[str, Any] | None, update_fields: frozenset[str]) -> _Row:
        """Observe the write of ``new`` (attribute values) over ``stored`` before the
        statement, as a save would, if it changes the row; ``new`` None: not known."""
        row = _Row(stored)
        if new is None:
            return row
        instance = copy.copy(stored)
        instance.__dict__.update(new)
        write = Write.of_read_row(self.model, instance, db, stored=stored, update_fields=update_fields)
        if write.changed:
            version = version_field(self.model)
            if version is not None:
                setattr(instance, version, getattr(stored, version) + 1)
            row.write, row.finish = write, observe(write)
        return row

    def _finish(self, db: str, rows: dict[Any, _Row], update_fields: frozenset[str]) -> dict[Any, models.Model]:
        """After the statement: read the rows again, bump the version of those that
        changed, and finish observing each of those. Returns them by pk."""
        after: dict[Any, _M] = {}
        for chunk in _chunks(db, list(rows)):
            if chunk:
                after.update((row.pk, row) for row in self._plain(db).filter(pk__in=chunk))
        version = version_field(self.model)
        done: list[tuple[Write, Callable[[], None] | None]] = []
        for pk, row in rows.items():
            written = after.get(pk)
            if written is None:
                continue
            actual = Write.of_read_row(self.model, written, db, stored=row.stored, update_fields=update_fields)
            if not actual.changed:
                continue  # observed before the statement or not: nothing to publish
            if version is not None:
                setattr(written, version, getattr(row.stored, version) + 1)
            if row.write is not None:
                # Observed before the statement, as a save is: publish the row as read
                # back (the same values, unless an expression gives another each time).
                for f in self.model._meta.concrete_fields:
                    setattr(row.write.instance, f.attname, getattr(written, f.attname))
                row.write.recompare()
                done.append((row.write, row.finish))
            else:
                # Its change was not foreseen (an expression in bulk_update, or one that
                # gives another value each time): observed now, after the statement.
                done.append((actual, None))
        if version is not None and done:
            for chunk in _chunks(db, [write.instance.pk for write, _ in done]):
                self._plain(db).filter(pk__in=chunk).update(**{version: F(version) + 1})
        for write, finish in done:
            (finish or observe(write))()
        return {write.instance.pk: write.instance for write, _ in done}

    def _scope(self) -> list[Any]:
        """The pk filters that keep a write to this queryset's rows (none for all rows)."""
        return [self._pks()] if self.query.where else []

    # -- bulk writes ----------------------------------------------------------------------

    def update(self, **kwargs: Any) -> int:
        """``QuerySet.update()``, publishing an update per row whose values it changes
        (the changed fields only, at version + 1); rows left as they were keep their
        version and publish nothing. 4 queries per call (see the module docstring)."""
        self._not_support_combined_queries("update")  # type: ignore[attr-defined]
        if self.query.is_sliced:
            raise TypeError("Cannot update a query once a slice has been taken.")
        if not kwargs:
            return super().update()  # writes nothing
        fields = {
            name: _field(
                self.model,
                name,
                lambda n: FieldError(
                    f"Cannot update model field {n!r} (only non-relations and foreign keys permitted)."
                ),
            )
            for name in kwargs
        }
        _refuse_version(self.model, fields.values())
        db = self._write_db()
        # Expressions (F("n") + 1, Case(...)) are evaluated on the locked rows by the
        # read that locks them, plain values in Python: the values about to be written.
        expressions = {
            f"{_NEW}{i}": ExpressionWrapper(value, output_field=fields[name])
            for i, (name, value) in enumerate(kwargs.items())
            if hasattr(value, "resolve_expression")
        }
        aliases = {name: f"{_NEW}{i}" for i, name in enumerate(kwargs)}
        update_fields = frozenset(kwargs)
        with transaction.atomic(using=db, savepoint=False):
            rows: dict[Any, _Row] = {}
            for pk, stored in self._lock(db, *self._scope(), **expressions).items():
                new = {}
                for name, value in kwargs.items():
                    field = fields[name]
                    alias = aliases[name]
                    new[field.attname] = stored.__dict__.pop(alias) if alias in expressions else _python(field, value)
                rows[pk] = self._begin(db, stored, new, update_fields)
            # Only the locked rows: a row inserted meanwhile that the filter would match
            # is left alone rather than changed unobserved.
            count = sum(
                models.QuerySet.update(self.filter(pk__in=chunk), **kwargs) for chunk in _chunks(db, list(rows))
            )
            self._finish(db, rows, update_fields)
        self._result_cache = None
        return count

    def bulk_update(self, objs: Iterable[_M], fields: Iterable[str], batch_size: int | None = None) -> int:
        """``QuerySet.bulk_update()``, publishing an update per row it changes, and
        setting the new version on those objects. 4 queries per call (see the module
        docstring)."""
        objs = tuple(objs)
        names = list(fields)
        targets = [
            _field(self.model, name, lambda _: ValueError("bulk_update() can only be used with concrete fields."))
            for name in names
        ]
        _refuse_version(self.model, targets)
        update_fields = frozenset(names)
        db = self._write_db()
        with transaction.atomic(using=db, savepoint=False):
            by_pk: dict[Any, _M] = {}
            for obj in objs:
                if obj.pk is not None:
                    by_pk.setdefault(obj.pk, obj)  # Django's bulk_update: the first one wins
            stored: dict[Any, _M] = {}
            for chunk in _chunks(db, sorted(by_pk)):  # one lock order: no deadlocks
                if chunk:
                    stored.update(self._lock(db, chunk, *self._scope()))
            rows: dict[Any, _Row] = {
                pk: self._begin(db, row, _predict(by_pk[pk], targets), update_fields) for pk, row in stored.items()
            }
            # Django's bulk_update on a plain copy of this queryset (its filters kept):
            # its UPDATE goes through QuerySet.update, which must not publish again.
            plain: models.QuerySet[_M] = models.QuerySet(self.model, query=self.query.chain(), using=db)
            count = plain.bulk_update(objs, names, batch_size=batch_size)
            written = self._finish(db, rows, update_fields)
        version = version_field(self.model)
        if version is not None:
            for obj in objs:
                if obj.pk in written:
                    setattr(obj, version, getattr(written[obj.pk], version))
        return count

    def bulk_create(  # noqa: PLR0917 (QuerySet.bulk_create's signature)
        self,
        objs: Iterable[_M],
        batch_size: int | None = None,
        ignore_conflicts: bool = False,
        update_conflicts: bool = False,
        update_fields: Collection[str] | None = None,
        unique_fields: Collection[str] | None = None,
    ) -> list[_M]:
        """``QuerySet.bulk_create()`` at version 1, publishing a create per row.
        No query beyond Django's INSERTs. Conflict handling is not supported."""
        if ignore_conflicts or update_conflicts:
            raise NotSupportedError(
                f"{self.model.__name__}.objects.bulk_create() cannot publish with ignore_conflicts or "
                "update_conflicts (which rows were created is unknown); use get_or_create() / "
                "update_or_create(), or save() per row."
            )
        objs = list(objs)
        version = version_field(self.model)
        if version is not None:
            for obj in objs:
                setattr(obj, version, 1)
        db = self._write_db()
        with transaction.atomic(using=db, savepoint=False):
            if not connections[db].features.can_return_rows_from_bulk_insert and any(obj.pk is None for obj in objs):
                # The new rows could not be told apart after the INSERT: save each, the
                # ordinary lifecycle (one INSERT per row).
                for obj in objs:
                    obj.save(force_insert=True, using=db)
                return objs
            finishes = [observe(Write.of_read_row(self.model, obj, db, stored=None, creating=True)) for obj in objs]
            created = super().bulk_create(objs, batch_size=batch_size)
            if any(obj.pk is None for obj in created):
                raise NotSupportedError(f"{self.model.__name__}: bulk_create() returned no primary keys to publish.")
            for finish in finishes:
                finish()
        return created

    def delete(self) -> tuple[int, dict[str, int]]:
        """``QuerySet.delete()``, publishing a delete per row at version + 1. Django's
        deletion collector already sends ``pre_delete`` per row (Paintbrush's receivers
        prevent its fast path), which would read each row again; here the rows are read
        and locked at once, in the deletion's transaction, and handed to it as stored."""
        self._not_support_combined_queries("delete")  # type: ignore[attr-defined]
        if self.query.is_sliced:
            raise TypeError("Cannot use 'limit' or 'offset' with delete().")
        if self.query.distinct_fields:
            raise TypeError("Cannot call delete() after .distinct(*fields).")
        if self._fields is not None:  # type: ignore[attr-defined]
            raise TypeError("Cannot call delete() after .values() or .values_list()")
        db = self._write_db()
        with transaction.atomic(using=db, savepoint=False):
            rows = list(self._lock(db, *self._scope()).values())
            for row in rows:
                stored_as_is(row)
            collector = Collector(using=db, origin=self)
            collector.collect(rows)
            deleted = collector.delete()
        self._result_cache = None
        return deleted

    # The async variants (aupdate, abulk_create, ...) call these through sync_to_async.


_LiveManagerBase = models.Manager.from_queryset(LiveQuerySet)


class LiveManager(_LiveManagerBase[_M]):
    """The manager of ``LiveModel``: derive a model's own manager from it."""
