"""
Where a write becomes events: ``pre_save``/``post_save``/``pre_delete``/``post_delete``
receivers for every registered model, publishing after the transaction commits.

Because this hangs off model signals rather than the REST views, the Django admin, the
shell, management commands and any ``Model.save()`` publish too. ``QuerySet.update()``
and ``bulk_create()`` send no model signals and so publish nothing, as in Django.

Per write, the work is done once whatever the number of subscribers: one read of the
previous row (under a row lock, in the write's transaction), one render of the row
before and after, one JSON encode per event shape, and one channel-layer message per
event key (``Resource.event_keys``); fan-out to sockets happens in each server
process (``paintbrush.hub``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connections, transaction
from django.db.models import Model
from django.db.models.signals import post_delete, post_save, pre_delete, pre_save

from . import deltas
from .resources import Resource, site
from .settings import pb_settings

logger = logging.getLogger("paintbrush")

#: The channel-layer message type carrying one encoded event to a process hub.
EVENT_TYPE = "paintbrush.event"

_STATE = "_paintbrush_before"


@dataclass
class _Before:
    """What ``pre_save``/``pre_delete`` learnt of the stored row, for the post signal."""

    item: dict[str, Any] | None = None  # rendered previous state; None on create
    keys: set[str] = field(default_factory=set)
    changed: bool = True
    version: int | None = None


_ROW = "_paintbrush_stored_row"

#: What Django writes on every sign-in (``update_last_login``): it changes nobody's
#: access, and role documents do not show it, so those receivers skip such saves.
_LOGIN_BOOKKEEPING = frozenset({"last_login"})


def is_login_bookkeeping(update_fields: Any) -> bool:
    return update_fields is not None and set(update_fields) <= _LOGIN_BOOKKEEPING


def stored_row(model: type[Model], instance: Model, using: str) -> Model | None:
    """The row as stored before the save or delete in progress (None for a new row).

    Read once per write and shared by every Paintbrush receiver (events, documents,
    access); inside a transaction it is read under a row lock, which serialises
    concurrent writers of the row, so the previous state we diff against and the
    version we assign are those of the row this write replaces."""
    if instance._state.adding or instance.pk is None:
        return None
    if _ROW not in instance.__dict__:
        qs = model._base_manager.using(using).filter(pk=instance.pk)
        if connections[using].in_atomic_block:
            qs = qs.select_for_update()
        rows = list(qs[:1])  # by primary key: no ORDER BY needed, unlike first()
        instance.__dict__[_ROW] = rows[0] if rows else None
    row: Model | None = instance.__dict__[_ROW]
    return row


def _begin_write(sender: type[Model], instance: Model, **kwargs: Any) -> None:
    """First pre_save/pre_delete receiver: forget a row read for an earlier write."""
    instance.__dict__.pop(_ROW, None)


def _end_write(sender: type[Model], instance: Model, **kwargs: Any) -> None:
    instance.__dict__.pop(_ROW, None)


def _values(resource: Resource, obj: Model, only: Any) -> dict[str, Any]:
    return {
        f.attname: f.value_from_object(obj)
        for f in obj._meta.concrete_fields
        if f.attname != resource.version_field and (only is None or f.name in only or f.attname in only)
    }


def on_pre_save(
    sender: type[Model],
    instance: Model,
    raw: bool = False,
    using: str = "default",
    update_fields: Any = None,
    **kwargs: Any,
) -> None:
    resource = site.for_model(sender)
    if resource is None or raw:
        return
    version_field = resource.version_field
    old = stored_row(sender, instance, using)
    if old is None:
        if version_field:
            setattr(instance, version_field, 1)
        instance.__dict__[_STATE] = _Before()
        return
    changed = _values(resource, old, update_fields) != _values(resource, instance, update_fields)
    if version_field:
        setattr(instance, version_field, getattr(old, version_field) + (1 if changed else 0))
    before = _Before(changed=changed)
    if resource.live and changed:
        before.item = deltas.render(resource, old)
        before.keys = set(resource.event_keys(old))
    instance.__dict__[_STATE] = before


def on_post_save(
    sender: type[Model],
    instance: Model,
    created: bool = False,
    raw: bool = False,
    using: str = "default",
    **kwargs: Any,
) -> None:
    before: _Before | None = instance.__dict__.pop(_STATE, None)
    resource = site.for_model(sender)
    if resource is None or not resource.live or before is None or not before.changed:
        return
    name = resource.name
    item = deltas.render(resource, instance)
    keys = set(resource.event_keys(instance))
    version = getattr(instance, resource.version_field) if resource.version_field else None
    pk = deltas.wire_id(instance.pk)
    messages: list[tuple[str, str]] = []
    if before.item is None:
        new_keys = keys
    else:
        new_keys = keys - before.keys
        stay = keys & before.keys
        if stay:
            fields = deltas.changed_fields(before.item, item)
            text = deltas.encode(deltas.update_event(name, pk, fields, version))
            messages += [(k, text) for k in sorted(stay)]
        gone = before.keys - keys
        if gone:
            # The row left these keys' view: for them it is as if it were deleted.
            text = deltas.encode(deltas.delete_event(name, pk, version))
            messages += [(k, text) for k in sorted(gone)]
    if new_keys:
        text = deltas.encode(deltas.create_event(name, item))
        messages += [(k, text) for k in sorted(new_keys)]
    _publish_on_commit(resource, messages, using)


def on_pre_delete(sender: type[Model], instance: Model, using: str = "default", **kwargs: Any) -> None:
    resource = site.for_model(sender)
    if resource is None or not resource.live:
        return
    # The stored row, not the instance: an out-of-date instance (loaded before the row
    # moved to another owner) must not route the delete to the old owner's keys.
    stored = stored_row(sender, instance, using) or instance
    version = getattr(stored, resource.version_field) if resource.version_field else None
    instance.__dict__[_STATE] = _Before(keys=set(resource.event_keys(stored)), version=version)


def on_post_delete(sender: type[Model], instance: Model, using: str = "default", **kwargs: Any) -> None:
    before: _Before | None = instance.__dict__.pop(_STATE, None)
    resource = site.for_model(sender)
    if resource is None or before is None or not before.keys:
        return
    version = None if before.version is None else before.version + 1
    text = deltas.encode(deltas.delete_event(resource.name, deltas.wire_id(instance.pk), version))
    _publish_on_commit(resource, [(k, text) for k in sorted(before.keys)], using)


def _publish_on_commit(resource: Resource, messages: list[tuple[str, str]], using: str) -> None:
    if messages:
        groups = [(resource.group_name(key), text) for key, text in messages]
        # robust: the write has committed; a channel layer that is down must not turn
        # a successful request into a 500. It is logged instead.
        transaction.on_commit(partial(send_to_groups, groups), using=using, robust=True)


def send_to_groups(messages: list[tuple[str, str]]) -> None:
    """Hand each ``(group, text)`` to the channel layer: one message per group, which
    reaches each server process with a subscriber once (``paintbrush.hub``)."""
    layer = get_channel_layer(pb_settings.CHANNEL_LAYER)
    if layer is None:
        logger.warning("Paintbrush: no channel layer %r; events dropped", pb_settings.CHANNEL_LAYER)
        return
    async_to_sync(_group_send_all)(layer, messages)


async def _group_send_all(layer: Any, messages: list[tuple[str, str]]) -> None:
    for group, text in messages:
        await layer.group_send(group, {"type": EVENT_TYPE, "group": group, "text": text})


def connect_receivers() -> None:
    """Connect once, for every model (receivers look the model up in the registry).

    Connected before the document and access receivers, which reuse ``stored_row``."""
    pre_save.connect(_begin_write, dispatch_uid="paintbrush.begin_write.save")
    pre_delete.connect(_begin_write, dispatch_uid="paintbrush.begin_write.delete")
    post_save.connect(_end_write, dispatch_uid="paintbrush.end_write.save")
    post_delete.connect(_end_write, dispatch_uid="paintbrush.end_write.delete")
    pre_save.connect(on_pre_save, dispatch_uid="paintbrush.pre_save")
    post_save.connect(on_post_save, dispatch_uid="paintbrush.post_save")
    pre_delete.connect(on_pre_delete, dispatch_uid="paintbrush.pre_delete")
    post_delete.connect(on_post_delete, dispatch_uid="paintbrush.post_delete")
