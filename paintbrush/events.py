"""
Where a write becomes events (Pattern 1): the write observer that turns each committed
change of a live resource's row into ``create``/``update``/``delete`` deltas
(``paintbrush.deltas``) and sends them to the row's event groups after commit.

Per write the work is done once, whatever the number of subscribers: one render of
the row before and after (the previous row is read once, by ``paintbrush.writes``), one
JSON encode per event shape, and one channel-layer message per event key
(``Resource.event_keys``); fan-out to sockets happens in each server process
(``paintbrush.hub``).

A row that moves between event keys (an order handed to another customer) reaches the
keys it leaves as ``delete`` and the keys it joins as ``create``, at the new version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import deltas, encoding, frames
from .broadcast import send_on_commit
from .groups import event_group
from .resources import Resource, site
from .writes import Write

__all__ = ["EventPublisher"]


@dataclass
class _Before:
    resource: Resource
    #: The row as rendered before the write; None for a new row.
    item: dict[str, Any] | None = None
    #: The event keys of the row before the write.
    keys: set[str] = field(default_factory=set)
    #: The row's version before the write (deletes).
    version: int | None = None


class EventPublisher:
    """The ``paintbrush.writes`` observer of live resources."""

    def before(self, write: Write) -> _Before | None:
        resource = site.for_model(write.model)
        if resource is None or not resource.live:
            return None
        if write.deleting:
            # The stored row, not the instance: an out-of-date instance (loaded before
            # the row moved to another owner) must not route the delete to the old
            # owner's keys.
            row = write.stored or write.instance
            keys = set(resource.event_keys(row))
            return _Before(resource, keys=keys, version=_version(resource, row)) if keys else None
        stored = write.stored
        if stored is None:
            return _Before(resource)
        if not write.changed:
            return None  # a save that changes nothing publishes nothing
        return _Before(resource, deltas.render(resource, stored), set(resource.event_keys(stored)))

    def after(self, write: Write, before: _Before) -> None:
        resource, name, pk = before.resource, before.resource.name, deltas.wire_id(write.instance.pk)
        messages: list[tuple[str, str]] = []
        if write.deleting:
            version = None if before.version is None else before.version + 1
            text = encoding.encode(frames.delete(name, pk, version))
            messages = [(key, text) for key in sorted(before.keys)]
        else:
            item = deltas.render(resource, write.instance)
            keys = set(resource.event_keys(write.instance))
            version = _version(resource, write.instance)
            joined = keys - before.keys if before.item is not None else keys
            if before.item is not None:
                stay = keys & before.keys
                if stay:
                    fields = deltas.changed_fields(before.item, item)
                    text = encoding.encode(frames.update(name, pk, fields, version))
                    messages += [(key, text) for key in sorted(stay)]
                gone = before.keys - keys
                if gone:
                    # The row left these keys' view: for them it is as if it were deleted.
                    text = encoding.encode(frames.delete(name, pk, version))
                    messages += [(key, text) for key in sorted(gone)]
            if joined:
                text = encoding.encode(frames.create(name, item))
                messages += [(key, text) for key in sorted(joined)]
        send_on_commit([(event_group(name, key), text) for key, text in messages], write.using)


def _version(resource: Resource, instance: Any) -> int | None:
    return getattr(instance, resource.version_field) if resource.version_field else None
