"""
Where a write is observed: the one owner of ``pre_save``/``post_save``/``pre_delete``/
``post_delete`` for Paintbrush. It reads the row as stored before the write once, assigns
the row version, and hands one ``Write`` to each *observer* of writes:

    events (Pattern 1)      paintbrush.events.EventPublisher    deltas to event groups
    documents (Pattern 2)   paintbrush.documents.notices        notices to document groups
    access                  paintbrush.access.AccessNotices     "reconnect" to a user's sockets

Each observer looks at the write twice: ``before(write)`` while the row is still stored
as it was (it may read the database), returning whatever it wants back, or None if the
write does not concern it; and ``after(write, state)`` once the row is written, where it
schedules its messages for after the commit (``paintbrush.broadcast``).

    class Observer:
        def before(self, write: Write) -> State | None: ...
        def after(self, write: Write, state: State) -> None: ...

Because this hangs off model signals rather than the REST views, the Django admin, the
shell, management commands and any ``Model.save()`` are observed too.

The previous row is read at most once per write, under a row lock inside the write's
transaction (``LiveModel`` makes every save atomic), so the previous state every
observer compares with, and the version assigned, are those of the row this write
replaces, even with concurrent writers. When the caller already holds that row, locked
in the same transaction (the REST view does), it says so with ``stored_as_is`` and the
row is not read again.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.db import connections
from django.db.models import Model
from django.db.models.signals import post_delete, post_save, pre_delete, pre_save

from .fields import VersionField, version_field

__all__ = ["Observer", "Write", "observe", "observers", "stored_as_is"]

#: The one key Paintbrush keeps in ``instance.__dict__``: the write in progress, from
#: its pre signal to its post signal (or the row the caller read, until the pre signal).
_KEY = "_paintbrush_write"

#: What Django writes on every sign-in (``update_last_login``): it changes nobody's
#: access and no document shows it, so observers may skip such saves cheaply.
_LOGIN_BOOKKEEPING = frozenset({"last_login"})

_UNREAD: Any = object()


@dataclass(eq=False)
class Write:
    """One save or delete of one row, from its pre signal to its post signal."""

    model: type[Model]
    instance: Model
    using: str
    deleting: bool
    #: The row is new (``save()`` of an unsaved instance).
    creating: bool
    #: The ``update_fields`` of the save, if any.
    update_fields: frozenset[str] | None = None
    _stored: Any = field(default=_UNREAD, repr=False)
    _changed: frozenset[str] | None = field(default=None, repr=False)
    #: Per observer, what its ``before`` returned (observers that returned None are left out).
    _states: list[tuple[Observer, Any]] = field(default_factory=list, repr=False)

    @classmethod
    def of_read_row(
        cls,
        model: type[Model],
        instance: Model,
        using: str,
        *,
        stored: Model | None,
        creating: bool = False,
        update_fields: frozenset[str] | None = None,
    ) -> Write:
        """A save whose stored row the caller has read already (``None``: no row):
        ``paintbrush.bulk`` reads every row of a statement in one query."""
        write = cls(model, instance, using, deleting=False, creating=creating, update_fields=update_fields)
        write._stored = stored
        return write

    def recompare(self) -> None:
        """The instance's values changed after ``changed`` was computed (a bulk
        statement wrote them): compute it again when next asked."""
        self._changed = None

    @property
    def stored(self) -> Model | None:
        """The row as stored before this write (None for a new row, or one already
        gone); read on first use, once, under a row lock when in a transaction."""
        if self._stored is _UNREAD:
            self._stored = None if self.creating else self._read_stored()
        stored: Model | None = self._stored
        return stored

    def _read_stored(self) -> Model | None:
        qs = self.model._base_manager.using(self.using).filter(pk=self.instance.pk)
        if connections[self.using].in_atomic_block:
            qs = qs.select_for_update()
        rows = list(qs[:1])  # by primary key: no ORDER BY needed, unlike first()
        return rows[0] if rows else None

    @property
    def changed(self) -> frozenset[str]:
        """Names of the concrete fields (the version aside) whose value this save
        changes, within ``update_fields`` if given. Every field of a new row."""
        if self._changed is None:
            fields = [
                f
                for f in self.model._meta.concrete_fields
                if not isinstance(f, VersionField)
                and (self.update_fields is None or f.name in self.update_fields or f.attname in self.update_fields)
            ]
            stored = self.stored
            self._changed = frozenset(
                f.name
                for f in fields
                if stored is None or f.value_from_object(stored) != f.value_from_object(self.instance)
            )
        return self._changed

    @property
    def is_login_bookkeeping(self) -> bool:
        """Django's sign-in saving ``last_login`` only."""
        return self.update_fields is not None and self.update_fields <= _LOGIN_BOOKKEEPING


class Observer(Protocol):
    def before(self, write: Write) -> Any:
        """While the row is stored as before: what ``after`` needs, or None to skip."""
        ...

    def after(self, write: Write, state: Any) -> None:
        """After the row is written (not yet committed)."""
        ...


#: The observers of every write, in the order they are called; ``PaintbrushConfig``
#: fills it once at start-up.
observers: list[Observer] = []


def stored_as_is(instance: Model) -> None:
    """Say that ``instance`` is the row exactly as stored, read under a row lock in the
    transaction that will save or delete it: the write then does not read it again.

    Call it before changing the instance (the REST view calls it right after
    ``get_object()``)."""
    instance.__dict__[_KEY] = copy.copy(instance)


def observe(write: Write) -> Callable[[], None]:
    """Hand a write made by a bulk statement (``paintbrush.bulk``) to every observer:
    their ``before`` now, their ``after`` when the returned function is called.

    ``write`` carries the row as stored (``Write.of_read_row(..., stored=row)``, None for a new
    row), read under a row lock in the write's transaction. Call this before the
    statement, with ``write.instance`` holding the values about to be written, and the
    returned function once they are written, the instance then holding the row as
    written, version included: nothing is assigned here. Not calling it drops the
    write (it turned out to change nothing); ``before`` has no side effects.

    When a change is known only after the statement, both may be called then; the
    caveat is that ``before`` then runs with the new state stored, so an observer that
    reads the database there (a ``Resource.event_keys`` with a ``queryset``) sees it.
    """
    _before(write)
    return lambda: _after(write)


def _before(write: Write) -> None:
    for observer in observers:
        state = observer.before(write)
        if state is not None:
            write._states.append((observer, state))


def _after(write: Write) -> None:
    for observer, state in write._states:
        observer.after(write, state)


def _begin(write: Write) -> None:
    version = version_field(write.model)
    if version and not write.deleting:
        stored = write.stored
        if stored is None:
            setattr(write.instance, version, 1)
        else:
            setattr(write.instance, version, getattr(stored, version) + (1 if write.changed else 0))
    _before(write)
    if write._states:
        write.instance.__dict__[_KEY] = write
    else:
        write.instance.__dict__.pop(_KEY, None)


def _preloaded(instance: Model) -> Any:
    held = instance.__dict__.pop(_KEY, None)
    return held if isinstance(held, Model) else _UNREAD


def _on_pre_save(
    sender: type[Model],
    instance: Model,
    raw: bool = False,
    using: str = "default",
    update_fields: Sequence[str] | None = None,
    **kwargs: Any,
) -> None:
    stored = _preloaded(instance)
    if raw:  # loaddata: the row is written as given, version included
        return
    # A new instance given an explicit primary key without a default (Product(pk=3)) is
    # saved by Django as an UPDATE of the row if it exists: it is a create only if not.
    creating = instance.pk is None or (instance._state.adding and instance._meta.pk.has_default())
    write = Write(
        sender,
        instance,
        using,
        deleting=False,
        creating=creating,
        update_fields=None if update_fields is None else frozenset(update_fields),
        _stored=None if creating else stored,
    )
    _begin(write)


def _on_pre_delete(sender: type[Model], instance: Model, using: str = "default", **kwargs: Any) -> None:
    stored = _preloaded(instance)
    _begin(Write(sender, instance, using, deleting=True, creating=False, _stored=stored))


def _on_post(sender: type[Model], instance: Model, **kwargs: Any) -> None:
    write = instance.__dict__.pop(_KEY, None)
    if isinstance(write, Write) and not kwargs.get("raw"):
        _after(write)


def connect() -> None:
    """Connect the four receivers, once, for every model (observers look the model up)."""
    pre_save.connect(_on_pre_save, dispatch_uid="paintbrush.writes.pre_save")
    pre_delete.connect(_on_pre_delete, dispatch_uid="paintbrush.writes.pre_delete")
    post_save.connect(_on_post, dispatch_uid="paintbrush.writes.post_save")
    post_delete.connect(_on_post, dispatch_uid="paintbrush.writes.post_delete")
