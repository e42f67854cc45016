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

from . import deltas, encoding, frames, scopes
from .broadcast import send_on_commit
from .groups import event_group
from .resources import Resource, site
from .writes import Write

__all__ = ["EventPublisher"]


@dataclass
class _Before:
    resource: Resource
    #: The row as rendered before the write; None for a new row (or a delete of a
    #: resource without scopes, which needs no rendering).
    item: dict[str, Any] | None = None
    #: The groups (by key) the row's events went to before the write, each with the
    #: scope its frames carry (``paintbrush.scopes.scoped_keys``).
    keys: dict[str, Any] = field(default_factory=dict)
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
            # the row moved to another owner, or room) must not route the delete to
            # the old owner's keys.
            row = write.stored or write.instance
            item = deltas.render(resource, row) if resource.scope_fields else {}
            keys = scopes.scoped_keys(resource, resource.event_keys(row), item)
            return _Before(resource, keys=keys, version=_version(resource, row)) if keys else None
        stored = write.stored
        if stored is None:
            return _Before(resource)
        if not write.changed:
            return None  # a save that changes nothing publishes nothing
        item = deltas.render(resource, stored)
        return _Before(resource, item, scopes.scoped_keys(resource, resource.event_keys(stored), item))

    def after(self, write: Write, before: _Before) -> None:
        resource, name, pk = before.resource, before.resource.name, deltas.wire_id(write.instance.pk)
        texts = _Texts()
        messages: list[tuple[str, str]] = []
        if write.deleting:
            version = None if before.version is None else before.version + 1
            messages = [
                (key, texts.of(frames.delete, name, pk, version, where=where))
                for key, where in sorted(before.keys.items())
            ]
        else:
            item = deltas.render(resource, write.instance)
            keys = scopes.scoped_keys(resource, resource.event_keys(write.instance), item)
            version = _version(resource, write.instance)
            joined = keys.keys() - before.keys.keys() if before.item is not None else keys.keys()
            if before.item is not None:
                stay = keys.keys() & before.keys.keys()
                if stay:
                    fields = deltas.changed_fields(before.item, item)
                    messages += [
                        (key, texts.of(frames.update, name, pk, fields, version, where=keys[key]))
                        for key in sorted(stay)
                    ]
                # The row left these keys' view (another owner, another room): for them
                # it is as if it were deleted.
                for key in sorted(before.keys.keys() - keys.keys()):
                    messages.append((key, texts.of(frames.delete, name, pk, version, where=before.keys[key])))
            for key in sorted(joined):
                messages.append((key, texts.of(frames.create, name, item, where=keys[key])))
        send_on_commit([(event_group(name, key), text) for key, text in messages], write.using)


class _Texts:
    """Each distinct frame of one write encoded once, whatever the number of groups
    (keys) it goes to: one text per scope, not per group."""

    def __init__(self) -> None:
        self._encoded: dict[tuple[Any, str], str] = {}

    def of(self, build: Any, *args: Any, where: Any) -> str:
        cache_key = (build, scopes.canonical(where) if where is not None else "")
        text = self._encoded.get(cache_key)
        if text is None:
            text = self._encoded[cache_key] = encoding.encode(build(*args, where))
        return text


def _version(resource: Resource, instance: Any) -> int | None:
    return getattr(instance, resource.version_field) if resource.version_field else None
