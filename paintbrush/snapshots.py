"""
Where a snapshot is read and rendered: once per distinct query, shared by every socket
that asks for the same one at the same moment.

    view, key = await database_sync_to_async(listing)(resource, user)   # Forbidden?
    ...                                            # join the resource's groups, then:
    frames = await snapshots.frames_for(resource.name, view, key)

A snapshot is what ``GET /api/<name>`` lists for the socket's user
(``paintbrush.permissions``), as frames of at most ``SNAPSHOT_FRAME_BYTES``
(``paintbrush.frames.snapshot``). Two sockets whose views compile to the same SQL with the same
parameters see the same rows, so after a restart the hundreds of sockets that reconnect
together and ask for the same 5,000 rows share one read, one rendering and one encoding,
instead of queueing one each on the database thread (500 such clients took 89 s to be
subscribed again, the server rendering 426 MB).

Sharing keeps the promise that a snapshot is read after its socket joined its groups
(a change committed meanwhile is in the snapshot, or arrives after it as an event): a
socket joins only a *batch* whose read has not begun. A batch waits in the database
thread's queue; whoever asks for the same query meanwhile joins it; its read starts
after the last of them joined.

Rows are rendered without the asking user's request (``context={}``), as events are:
a serializer must not depend on the viewer (``paintbrush.deltas``), so one rendering
serves everyone who may see those rows.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async

from . import frames, permissions, scopes
from .exceptions import Forbidden
from .resources import Resource
from .settings import pb_settings

logger = logging.getLogger("paintbrush")

__all__ = ["frames_for", "listing", "query_key", "stats"]

#: Over the process's life: snapshots read and rendered, and those served by a
#: rendering another socket asked for.
stats = {"rendered": 0, "shared": 0}

#: Guards ``_Batch.started`` between the event loop (joining) and the database thread
#: (starting the read).
_lock = threading.Lock()


@dataclass(eq=False)
class _Batch:
    key: Hashable
    resource: str
    where: dict[str, Any] | None = None
    last: int | None = None
    started: bool = False
    task: asyncio.Task[list[str]] | None = None
    waiters: int = 1


_batches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, _Batch]] = weakref.WeakKeyDictionary()


def listing(
    resource: Resource, user: Any, where: dict[str, Any] | None = None, last: int | None = None
) -> tuple[Any, Hashable]:
    """The view of ``GET /api/<name>?<where>&last=<last>`` for ``user`` (``Forbidden``
    if they may not list it, or may not read the scope) and the key of its snapshot.
    Runs in the database thread."""
    params = {name: _query_value(value) for name, value in (where or {}).items()}
    if last is not None:
        params["last"] = str(last + 1)  # one more: whether the window is the whole scope
    view = permissions.list_view(resource, user, params)
    if where is not None and not _may_read(resource, user, where):
        # The same answer whether the scope exists or not: nothing is revealed.
        raise Forbidden(f"You may not read that scope of {resource.name!r}.")
    return view, (query_key(resource.name, view), scopes.canonical(where or {}), last)


def _may_read(resource: Resource, user: Any, where: dict[str, Any]) -> bool:
    try:
        return bool(resource.can_read_scope(user, where))
    except Exception:
        hook = f"{type(resource).__name__}.can_read_scope"
        logger.exception("Paintbrush: %s raised for %r; the scope is refused", hook, where)
        raise Forbidden(f"The server could not decide whether you may read that scope ({hook} failed).") from None


def _query_value(value: Any) -> str:
    # As a query string carries it: django-filter parses "true"/"false" for booleans.
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def query_key(resource: str, view: Any) -> Hashable:
    """What makes two snapshots the same: the resource, the serializer and the SQL of
    the view's listing with its parameters. Compiled, not run (no query)."""
    queryset = view.filter_queryset(view.get_queryset())
    sql, params = queryset.query.sql_with_params()
    return (resource, view.get_serializer_class(), sql, tuple(map(repr, params)))


async def frames_for(
    resource: str, view: Any, key: Hashable, where: dict[str, Any] | None = None, last: int | None = None
) -> list[str]:
    """The snapshot frames of ``view``'s listing, read after this call began: from a
    batch not yet started for the same ``key``, or a new one."""
    loop = asyncio.get_running_loop()
    batches = _batches.setdefault(loop, {})
    with _lock:
        batch = batches.get(key)
        if batch is not None and not batch.started:
            batch.waiters += 1
            stats["shared"] += 1
        else:
            batch = batches[key] = _Batch(key, resource, where, last)
    if batch.task is None:
        batch.task = loop.create_task(_read(view, batch, batches))
    # Shielded: one socket closing while it waits must not cancel the others' read.
    result: list[str] = await asyncio.shield(batch.task)
    return result


async def _read(view: Any, batch: _Batch, batches: dict[Hashable, _Batch]) -> list[str]:
    try:
        result: list[str] = await database_sync_to_async(_render)(view, batch, batches)
    finally:
        # Whatever happened (a read that failed before it began included), no later
        # socket may join this batch: it asks for a read of its own.
        with _lock:
            batch.started = True
            if batches.get(batch.key) is batch:
                del batches[batch.key]
    return result


def _render(view: Any, batch: _Batch, batches: dict[Hashable, _Batch]) -> list[str]:
    with _lock:
        batch.started = True  # from now on, a socket that asks waits for the next batch
        if batches.get(batch.key) is batch:
            del batches[batch.key]
    stats["rendered"] += 1
    queryset = view.filter_queryset(view.get_queryset())
    items = list(view.get_serializer_class()(queryset, many=True, context={}).data)
    resource, where, last = batch.resource, batch.where, batch.last
    tags: dict[str, Any] = {} if where is None else {"where": where}
    if last is not None:
        # Read one more than asked: the window is the whole scope when it is not there.
        tags["last"] = last
        if len(items) <= last:
            tags["complete"] = True
        items = items[-last:]
    return frames.snapshot(resource, items, pb_settings.SNAPSHOT_FRAME_BYTES, **tags)
