"""
The sockets that hold a role document: ``/ws/doc`` (``DocConsumer``), and the reserved
resource ``doc`` on the multiplexed ``/ws`` (``paintbrush.consumers.LiveConsumer``
mixes in ``DocumentSocketMixin``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async

from .. import frames, metrics
from ..access import AccessWatchMixin
from ..exceptions import Forbidden
from ..frames import DOC
from ..outbox import TRY_AGAIN_LATER
from ..sockets import PaintbrushSocket
from .hub import Revision, get_doc_hub
from .roles import DocGroup, Role, roles

if TYPE_CHECKING:
    from ..hub import Hub
    from ..outbox import Outbox

logger = logging.getLogger("paintbrush")

__all__ = ["DocConsumer", "DocumentSocketMixin", "role_for"]


async def role_for(user: Any) -> Role | None:
    role: Role | None = await database_sync_to_async(roles.role_for)(user)
    return role


class DocumentSocketMixin:
    """A socket's role document: attached to the process's document hub, which pushes
    it the document now and after every change, whole or as a patch (``doc_patches``:
    the client asked for patches, protocol section 2c)."""

    doc_role: Role | None = None
    doc_group: DocGroup | None = None
    doc_patches = False
    #: The newest revision queued to the client.
    _doc_revision: Revision | None = None

    if TYPE_CHECKING:  # provided by PaintbrushSocket
        outbox: Outbox
        hub: Hub

    async def open_document(self, patches: bool = False) -> None:
        """``opendoc`` of the reserved resource ``doc`` on ``/ws``: ``opened``, then the
        current document (a socket that has it already gets it again, as asked: a
        client that missed a revision re-opens for the whole document)."""
        user = getattr(self, "scope", {}).get("user")
        role = await role_for(user)
        if role is None:
            raise Forbidden("The role document needs a signed-in user with a role.")
        self.outbox.put_reply(frames.opened(DOC))
        self.doc_patches = patches
        if self.doc_role is None:
            await self.attach_document(role, user)  # sends the current document
        elif self._doc_revision is not None:
            self.outbox.put_document(self._whole(self._doc_revision))

    async def close_document(self) -> None:
        """``closedoc`` of ``doc`` on ``/ws``."""
        await self.detach_document()
        self.outbox.put_reply(frames.closed(DOC))

    async def attach_document(self, role: Role, user: Any) -> None:
        self.doc_role, self.doc_group, self._doc_revision = role, role.group_of(user), None
        metrics.SUBSCRIPTIONS.labels(DOC).inc()
        await get_doc_hub(self.hub.layer).attach(self, role, self.doc_group)

    async def detach_document(self) -> None:
        role, group = self.doc_role, self.doc_group
        self.doc_role = self.doc_group = self._doc_revision = None
        if role is not None and group is not None:
            metrics.SUBSCRIPTIONS.labels(DOC).dec()
            await get_doc_hub(self.hub.layer).detach(self, role, group)

    def push_document(self, revision: Revision) -> None:
        if self.doc_group is None:
            return  # detached (the hub may push while it waits to let the socket go)
        held = self._doc_revision
        if held is not None and revision.rev <= held.rev:
            return  # not newer than what this socket has (its first document racing a push)
        self._doc_revision = revision
        if self.doc_patches and revision.patch is not None and held is not None and held.rev == revision.rev - 1:
            self.outbox.put_document(revision.patch, lambda: revision.whole)
        else:
            self.outbox.put_document(self._whole(revision))

    def _whole(self, revision: Revision) -> str:
        return revision.whole if self.doc_patches else revision.whole_v1


class DocConsumer(AccessWatchMixin, DocumentSocketMixin, PaintbrushSocket):
    """``/ws/doc``: the user's role document on connect, then after every change
    (``/ws/doc?patch=1``: as patches)."""

    async def connect(self) -> None:
        if not await self.admit():
            return
        user = self.scope.get("user")
        try:
            role = await role_for(user) if await self.watch_access() else None
        except Exception:
            logger.exception("Paintbrush: setting up a document socket failed; refusing it")
            role = None
        if role is None:
            await self.refuse("access", detail="no role document for this user")
            return
        await self.accept()
        # /ws/doc?patch=1: patches (protocol section 2c); anything else, whole documents.
        self.doc_patches = parse_qs(self.scope.get("query_string", b"").decode("latin-1")).get("patch") == ["1"]
        try:
            await self.attach_document(role, user)
        except Exception:
            # The channel layer or the database failed: the client reconnects later.
            logger.exception("Paintbrush: attaching a document socket failed; closing it")
            await self.close(TRY_AGAIN_LATER)  # released() detaches what was attached

    async def released(self) -> None:
        await self.detach_document()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # Read-only socket: anything the client sends is ignored.
        return None
