"""
The sockets that hold a role document: ``/ws/doc`` (``DocConsumer``), and the reserved
resource ``doc`` on the multiplexed ``/ws`` (``paintbrush.consumers.LiveConsumer``
mixes in ``DocumentSocketMixin``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from channels.db import database_sync_to_async

from .. import frames, metrics
from ..access import AccessWatchMixin
from ..exceptions import Forbidden
from ..frames import DOC
from ..outbox import TRY_AGAIN_LATER
from ..sockets import PaintbrushSocket
from .hub import get_doc_hub
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
    it the document now and after every change."""

    doc_role: Role | None = None
    doc_group: DocGroup | None = None
    _doc_seq = -1
    _doc_text: str | None = None

    if TYPE_CHECKING:  # provided by PaintbrushSocket
        outbox: Outbox
        hub: Hub

    async def open_document(self) -> None:
        """``opendoc`` of the reserved resource ``doc`` on ``/ws``: ``opened``, then the
        current document (a socket that has it already gets it again, as asked)."""
        user = getattr(self, "scope", {}).get("user")
        role = await role_for(user)
        if role is None:
            raise Forbidden("The role document needs a signed-in user with a role.")
        self.outbox.put_reply(frames.opened(DOC))
        if self.doc_role is None:
            await self.attach_document(role, user)  # sends the current document
        elif self._doc_text is not None:
            self.outbox.put_document(self._doc_text)

    async def close_document(self) -> None:
        """``closedoc`` of ``doc`` on ``/ws``."""
        await self.detach_document()
        self.outbox.put_reply(frames.closed(DOC))

    async def attach_document(self, role: Role, user: Any) -> None:
        self.doc_role, self.doc_group = role, role.group_of(user)
        metrics.SUBSCRIPTIONS.labels(DOC).inc()
        await get_doc_hub(self.hub.layer).attach(self, role, self.doc_group)

    async def detach_document(self) -> None:
        role, group = self.doc_role, self.doc_group
        self.doc_role = self.doc_group = None
        self._doc_seq, self._doc_text = -1, None
        if role is not None and group is not None:
            metrics.SUBSCRIPTIONS.labels(DOC).dec()
            await get_doc_hub(self.hub.layer).detach(self, role, group)

    def push_document(self, text: str, seq: int) -> None:
        # Not newer than what this socket has (its first document racing a push).
        if seq <= self._doc_seq:
            return
        self._doc_seq, self._doc_text = seq, text
        self.outbox.put_document(text)


class DocConsumer(AccessWatchMixin, DocumentSocketMixin, PaintbrushSocket):
    """``/ws/doc``: the user's role document on connect, then after every change."""

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
