"""
Where a role document is assembled and pushed.

Writer side: after a change commits, ``notify`` tells the channel layer which document
groups it affects (``Role.affected``): one small notice per group, no assembly.

Server side: each process has one ``DocHub`` per event loop. It keeps a refcount of its
connected sockets per group (``admin``, ``customer:<id>``), and joins the channel-layer
groups of those only, so documents are assembled only for users who are connected. A
notice marks the group dirty; dirty groups are flushed after
``PAINTBRUSH["DOC_COALESCE_SECONDS"]``, so a burst of commits gives one push. A flush
assembles each dirty group's document once, encodes it once, and hands the same text
to every local socket of the group. An unchanged document is not sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from functools import partial
from typing import Any, Protocol

from channels.db import database_sync_to_async
from django.db import transaction
from django.db.models import Model
from django.db.models.signals import post_delete, post_save

from . import deltas
from .documents import Every, Role, roles
from .hub import get_hub
from .publish import send_to_groups
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


def notify(sender: type[Model], instance: Model, using: str = "default", **kwargs: Any) -> None:
    """``post_save``/``post_delete`` receiver: after commit, one notice per affected group."""
    if kwargs.get("raw") or not roles.roles:
        return
    targets = affected_groups(instance)
    if targets:
        messages = [(group, "") for group in sorted(targets)]
        transaction.on_commit(partial(send_to_groups, messages), using=using, robust=True)


def connect_receivers() -> None:
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
        self.seq = 0
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: set[asyncio.Task[None]] = set()

    async def attach(self, socket: DocSocket, role: Role, group: str) -> None:
        """Count ``socket`` in ``group`` and send it the current document."""
        hub = get_hub(self.layer)
        local = self.sockets.setdefault(group, set())
        if not local:
            await hub.join(layer_group(group), self)
            if role.per_user:
                self.role_refs[role.name] = self.role_refs.get(role.name, 0) + 1
                if self.role_refs[role.name] == 1:
                    await hub.join(role_wide_group(role), self)
        local.add(socket)
        seq, text = await self.assemble(group)
        await socket.push_document(text, seq)

    async def detach(self, socket: DocSocket, role: Role, group: str) -> None:
        local = self.sockets.get(group)
        if local is None or socket not in local:
            return
        local.discard(socket)
        if local:
            return
        del self.sockets[group]
        self.dirty.discard(group)
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

    async def assemble(self, group: str) -> tuple[int, str]:
        # The sequence number is taken before reading: a later number means a later
        # read, so a socket never replaces a newer document by an older one.
        self.seq += 1
        seq = self.seq
        role = roles.role_of_group(group)
        document = await database_sync_to_async(role.document)(group)
        return seq, deltas.encode({"type": "doc", "resource": "doc", "doc": document})

    # Called by the process hub with each notice.
    async def deliver(self, group: str, text: str) -> None:
        if group.startswith("paintbrush.docrole."):
            prefix = group.removeprefix("paintbrush.docrole.") + ":"
            self.dirty.update(g for g in self.sockets if g.startswith(prefix))
        else:
            self.dirty.update(g for g in self.sockets if layer_group(g) == group)
        if self.dirty and self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(pb_settings.DOC_COALESCE_SECONDS, self._start_flush)

    def _start_flush(self) -> None:
        self._timer = None
        task = asyncio.get_running_loop().create_task(self.flush())
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def flush(self) -> None:
        groups, self.dirty = self.dirty, set()
        for group in sorted(groups):
            if group not in self.sockets:
                continue
            try:
                seq, text = await self.assemble(group)
            except Exception:
                logger.exception("Paintbrush: assembling the %r document failed", group)
                continue
            for socket in list(self.sockets.get(group, ())):
                with contextlib.suppress(Exception):
                    await socket.push_document(text, seq)


def get_doc_hub(layer: Any) -> DocHub:
    """The document hub of ``layer`` for the running event loop."""
    hub = get_hub(layer)
    doc_hub: DocHub | None = getattr(hub, "doc_hub", None)
    if doc_hub is None:
        doc_hub = DocHub(layer)
        hub.doc_hub = doc_hub  # type: ignore[attr-defined]
    return doc_hub
