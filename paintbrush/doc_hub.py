"""
Where a role document is assembled and pushed.

Writer side: after a change commits, ``notify`` tells the channel layer which document
groups it affects (``Role.affected``): one small notice per group, no assembly.

Server side: each process has one ``DocHub`` per event loop. It keeps a refcount of its
connected sockets per group (``admin``, ``customer:<id>``), and joins the channel-layer
groups of those only, so documents are assembled only for users who are connected. A
notice marks the group dirty; dirty groups are flushed after
``PAINTBRUSH["DOC_COALESCE_SECONDS"]``, so a burst of commits gives one push. A flush
assembles each dirty group's document once (in each process that has sockets of the
group), encodes it once, and hands the same text to every local socket of the group.
An unchanged document is not sent again, and a socket that joins a group gets the
group's current document without a new assembly.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any, Protocol

from channels.db import database_sync_to_async
from django.db import transaction
from django.db.models import Model
from django.db.models.signals import post_delete, post_save, pre_delete, pre_save

from . import deltas
from .documents import Every, Role, roles
from .hub import get_hub
from .publish import is_login_bookkeeping, send_to_groups, stored_row
from .settings import pb_settings

logger = logging.getLogger("paintbrush")

__all__ = ["DocHub", "get_doc_hub", "notify"]


def layer_group(group: str) -> str:
    """Channel-layer name of a document group (``customer:5`` has a colon, which
    channel-layer group names may not)."""
    return "paintbrush.doc." + group.replace(":", ".")


def role_wide_group(role: Role) -> str:
    """Joined by every process with a socket of ``role``: "every connected customer"."""
    return f"paintbrush.docrole.{role.name}"


# -- writer side ------------------------------------------------------------------------


def affected_groups(instance: Model) -> set[str]:
    targets: set[str] = set()
    for role in roles.roles:
        affected = role.affected(instance)
        if isinstance(affected, Every):
            targets.add(role_wide_group(role) if role.per_user else layer_group(role.group()))
        else:
            targets.update(layer_group(group) for group in affected)
    return targets


_BEFORE = "_paintbrush_doc_groups"


def remember(sender: type[Model], instance: Model, using: str = "default", **kwargs: Any) -> None:
    """``pre_save``/``pre_delete`` receiver: the groups the stored row affects, so that a
    row leaving a document (an order handed to another customer) updates it too."""
    if kwargs.get("raw") or not roles.roles or instance._state.adding or instance.pk is None:
        return
    if is_login_bookkeeping(kwargs.get("update_fields")) or not affected_groups(instance):
        return  # a model no document reads
    stored = stored_row(sender, instance, using)
    if stored is not None:
        instance.__dict__[_BEFORE] = affected_groups(stored)


def notify(sender: type[Model], instance: Model, using: str = "default", **kwargs: Any) -> None:
    """``post_save``/``post_delete`` receiver: after commit, one notice per affected group."""
    if kwargs.get("raw") or not roles.roles or is_login_bookkeeping(kwargs.get("update_fields")):
        return
    targets = affected_groups(instance) | instance.__dict__.pop(_BEFORE, set())
    if targets:
        messages = [(group, "") for group in sorted(targets)]
        transaction.on_commit(partial(send_to_groups, messages), using=using, robust=True)


def connect_receivers() -> None:
    """Connected after ``publish.connect_receivers``, whose pre-signal state they reuse."""
    pre_save.connect(remember, dispatch_uid="paintbrush.documents.pre_save")
    pre_delete.connect(remember, dispatch_uid="paintbrush.documents.pre_delete")
    post_save.connect(notify, dispatch_uid="paintbrush.documents.post_save")
    post_delete.connect(notify, dispatch_uid="paintbrush.documents.post_delete")


# -- server side ------------------------------------------------------------------------


class DocSocket(Protocol):
    async def push_document(self, text: str, seq: int) -> None: ...


class DocHub:
    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.sockets: dict[str, set[DocSocket]] = {}
        self.role_refs: dict[str, int] = {}
        self.dirty: set[str] = set()
        #: group -> (seq, text) of the newest document assembled for it
        self.latest: dict[str, tuple[int, str]] = {}
        self.seq = 0
        #: channel-layer group -> document group, for the groups with local sockets
        self._by_layer_group: dict[str, str] = {}
        self._lock = asyncio.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: set[asyncio.Task[None]] = set()

    async def attach(self, socket: DocSocket, role: Role, group: str) -> None:
        """Count ``socket`` in ``group`` and send it the current document."""
        async with self._lock:  # membership changes await the channel layer: serialise them
            local = self.sockets.setdefault(group, set())
            first = not local
            local.add(socket)
            if first:
                hub = get_hub(self.layer)
                self._by_layer_group[layer_group(group)] = group
                await hub.join(layer_group(group), self)
                if role.per_user:
                    self.role_refs[role.name] = self.role_refs.get(role.name, 0) + 1
                    if self.role_refs[role.name] == 1:
                        await hub.join(role_wide_group(role), self)
        # Another tab of the group got a document no notice has outdated since: reuse it.
        if group not in self.latest or group in self.dirty:
            await self.refresh(group)
        seq, text = self.latest[group]
        await socket.push_document(text, seq)

    async def detach(self, socket: DocSocket, role: Role, group: str) -> None:
        async with self._lock:
            local = self.sockets.get(group)
            if local is None or socket not in local:
                return
            local.discard(socket)
            if local:
                return
            del self.sockets[group]
            del self._by_layer_group[layer_group(group)]
            self.dirty.discard(group)
            self.latest.pop(group, None)  # no notices reach a group we leave
            hub = get_hub(self.layer)
            await hub.leave(layer_group(group), self)
            if role.per_user:
                self.role_refs[role.name] -= 1
                if not self.role_refs[role.name]:
                    del self.role_refs[role.name]
                    await hub.leave(role_wide_group(role), self)
            if not self.sockets and self._timer is not None:
                self._timer.cancel()
                self._timer = None

    async def refresh(self, group: str) -> None:
        """Assemble ``group``'s document once and push it to the group's sockets,
        unless it is unchanged or a newer one already went out."""
        # The sequence number is taken before reading: a later number means a later
        # read, so an older document never replaces a newer one.
        self.seq += 1
        seq = self.seq
        # This read sees every change whose notice has arrived: it settles them.
        self.dirty.discard(group)
        role = roles.role_of_group(group)
        document = await database_sync_to_async(role.document)(group)
        text = deltas.encode({"type": "doc", "resource": "doc", "doc": document})
        latest = self.latest.get(group)
        if group not in self.sockets or (latest is not None and latest[0] > seq):
            return
        self.latest[group] = (seq, text)
        if latest is not None and latest[1] == text:
            return  # the change did not alter this document: nothing to push
        for socket in list(self.sockets.get(group, ())):
            try:
                await socket.push_document(text, seq)
            except Exception:
                logger.exception("Paintbrush: pushing the %r document failed", group)

    # Called by the process hub with each notice.
    async def deliver(self, group: str, text: str) -> None:
        if group.startswith("paintbrush.docrole."):
            prefix = group.removeprefix("paintbrush.docrole.") + ":"
            self.dirty.update(g for g in self.sockets if g.startswith(prefix))
        elif group in self._by_layer_group:
            self.dirty.add(self._by_layer_group[group])
        self._schedule_flush()

    async def lost(self) -> None:
        """Notices may have been lost: every document is assembled again."""
        self.dirty.update(self.sockets)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        # The first notice of a burst starts the window; later ones join it.
        if self.dirty and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(pb_settings.DOC_COALESCE_SECONDS, self._start_flush)

    def _start_flush(self) -> None:
        self._timer = None
        task = asyncio.get_running_loop().create_task(self.flush())
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def flush(self) -> None:
        groups, self.dirty = self.dirty, set()
        for group in sorted(groups):
            try:
                await self.refresh(group)
            except Exception:
                logger.exception("Paintbrush: assembling the %r document failed", group)


def get_doc_hub(layer: Any) -> DocHub:
    """The document hub of ``layer`` for the running event loop."""
    hub = get_hub(layer)
    doc_hub: DocHub | None = getattr(hub, "doc_hub", None)
    if doc_hub is None:
        doc_hub = DocHub(layer)
        hub.doc_hub = doc_hub  # type: ignore[attr-defined]
    return doc_hub
