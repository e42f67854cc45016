"""
Where a role document is assembled and pushed, in each server process.

Each process has one ``DocHub`` per event loop. It keeps a refcount of its connected
sockets per document group (``admin``, ``customer:<id>``), and joins the channel-layer
groups of those only, so documents are assembled only for users who are connected. A
notice (``paintbrush.documents.notices``) marks the group dirty; dirty groups are
flushed after ``PAINTBRUSH["DOC_COALESCE_SECONDS"]``, so a burst of commits gives one
push. A flush assembles each dirty group's document once (in each process that has
sockets of the group), encodes it once, and hands the same text to every local socket
of the group. An unchanged document is not sent again, and a socket that joins a group
gets the group's current document without a new assembly.

    hub = get_doc_hub(layer)
    await hub.attach(socket, role, role.group_of(user))   # socket.push_document(text, seq)
    await hub.detach(socket, role, group)
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from functools import partial
from typing import Any, Protocol

from channels.db import database_sync_to_async

from .. import frames, metrics
from ..groups import role_group
from ..hub import Hub, Membership, get_hub
from ..settings import pb_settings
from .roles import DocGroup, Role

logger = logging.getLogger("paintbrush")

__all__ = ["DocHub", "DocSocket", "get_doc_hub"]

#: After a failed assembly, the group is assembled again this many seconds later.
_RETRY_SECONDS = 1.0


class DocSocket(Protocol):
    def push_document(self, text: str, seq: int) -> None:
        """Queue ``text`` for the socket (it must not wait)."""
        ...


class DocHub:
    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.sockets: dict[DocGroup, set[DocSocket]] = {}
        self.roles: dict[DocGroup, Role] = {}
        #: Per per-user role: how many of its groups have local sockets.
        self.role_refs: dict[str, int] = {}
        self.dirty: set[DocGroup] = set()
        #: group -> (seq, text) of the newest document assembled for it
        self.latest: dict[DocGroup, tuple[int, str]] = {}
        self.seq = 0
        self._memberships: dict[DocGroup | str, Membership] = {}
        self._lock = asyncio.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: set[asyncio.Task[None]] = set()

    async def attach(self, socket: DocSocket, role: Role, group: DocGroup) -> None:
        """Count ``socket`` in ``group`` and send it the current document."""
        async with self._lock:  # membership changes await the channel layer: serialise them
            if not self.sockets.get(group):
                # Joined before the socket counts: if the channel layer fails here,
                # nothing is left half-done for the next socket of the group to trust.
                hub = get_hub(self.layer)
                if role.per_user and not self.role_refs.get(role.name):
                    self._memberships[role.name] = await hub.join(
                        role_group(role.name), partial(self._on_role_notice, role.name), self._on_lost
                    )
                    self.role_refs[role.name] = 0
                try:
                    self._memberships[group] = await hub.join(
                        group.layer_group, partial(self._on_notice, group), self._on_lost
                    )
                except BaseException:
                    if role.per_user and not self.role_refs.get(role.name):
                        self.role_refs.pop(role.name, None)
                        await hub.leave(self._memberships.pop(role.name))
                    raise
                self.roles[group] = role
                if role.per_user:
                    self.role_refs[role.name] += 1
            self.sockets.setdefault(group, set()).add(socket)
        # Another tab of the group got a document no notice has outdated since: reuse it.
        if group not in self.latest or group in self.dirty:
            await self.refresh(group)
        seq, text = self.latest[group]
        socket.push_document(text, seq)

    async def detach(self, socket: DocSocket, role: Role, group: DocGroup) -> None:
        async with self._lock:
            local = self.sockets.get(group)
            if local is None or socket not in local:
                return
            local.discard(socket)
            if local:
                return
            del self.sockets[group]
            del self.roles[group]
            self.dirty.discard(group)
            self.latest.pop(group, None)  # no notices reach a group we leave
            hub = get_hub(self.layer)
            await hub.leave(self._memberships.pop(group))
            if role.per_user:
                self.role_refs[role.name] -= 1
                if not self.role_refs[role.name]:
                    del self.role_refs[role.name]
                    await hub.leave(self._memberships.pop(role.name))
            if not self.sockets and self._timer is not None:
                self._timer.cancel()
                self._timer = None

    async def refresh(self, group: DocGroup) -> None:
        """Assemble ``group``'s document once and push it to the group's sockets,
        unless it is unchanged or a newer one already went out."""
        # The sequence number is taken before reading: a later number means a later
        # read, so an older document never replaces a newer one.
        self.seq += 1
        seq = self.seq
        # This read sees every change whose notice has arrived: it settles them.
        self.dirty.discard(group)
        role = self.roles.get(group)
        if role is None:
            return  # the last socket left meanwhile
        with metrics.assembling(role.name):
            document = await database_sync_to_async(role.document)(group)
        text = frames.document(document)
        latest = self.latest.get(group)
        if group not in self.sockets or (latest is not None and latest[0] > seq):
            return
        self.latest[group] = (seq, text)
        if latest is not None and latest[1] == text:
            return  # the change did not alter this document: nothing to push
        for socket in list(self.sockets.get(group, ())):
            try:
                socket.push_document(text, seq)
            except Exception:
                logger.exception("Paintbrush: pushing the %r document failed", str(group))

    # -- from the process hub ---------------------------------------------------------------

    def _on_notice(self, group: DocGroup, text: str) -> None:
        self.dirty.add(group)
        self._schedule_flush()

    def _on_role_notice(self, role: str, text: str) -> None:
        """A change concerning every document of a per-user role (a product)."""
        self.dirty.update(group for group in self.sockets if group.role == role)
        self._schedule_flush()

    def _on_lost(self, reason: str) -> None:
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
        for group in sorted(groups, key=str):
            try:
                await self.refresh(group)
            except Exception:
                logger.exception("Paintbrush: assembling the %r document failed", str(group))
                # Its sockets still hold the old document: try again after a while.
                self.dirty.add(group)
                asyncio.get_running_loop().call_later(_RETRY_SECONDS, self._schedule_flush)


_doc_hubs: weakref.WeakKeyDictionary[Hub, DocHub] = weakref.WeakKeyDictionary()


def get_doc_hub(layer: Any) -> DocHub:
    """The document hub of ``layer`` for the running event loop."""
    hub = get_hub(layer)
    doc_hub = _doc_hubs.get(hub)
    if doc_hub is None:
        doc_hub = _doc_hubs[hub] = DocHub(layer)
    return doc_hub
