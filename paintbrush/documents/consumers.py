"""
The sockets that hold a role document: ``/ws/doc`` (``DocConsumer``), and the reserved
resource ``doc`` on the multiplexed ``/ws`` (``paintbrush.consumers.LiveConsumer``
mixes in ``DocumentSocketMixin``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from ..access import AccessWatchMixin
from ..outbox import TRY_AGAIN_LATER
from ..settings import pb_settings
from ..sockets import PaintbrushSocket
from .hub import get_doc_hub
from .roles import DocGroup, Role, roles

if TYPE_CHECKING:
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

    async def attach_document(self, role: Role, user: Any) -> None:
        self.doc_role, self.doc_group = role, role.group_of(user)
        await get_doc_hub(get_channel_layer(pb_settings.CHANNEL_LAYER)).attach(self, role, self.doc_group)

    async def detach_document(self) -> None:
        if self.doc_role is not None and self.doc_group is not None:
            hub = get_doc_hub(get_channel_layer(pb_settings.CHANNEL_LAYER))
            await hub.detach(self, self.doc_role, self.doc_group)
        self.doc_role = self.doc_group = None
        self._doc_seq, self._doc_text = -1, None

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
            self.log_refusal("access", detail="no role document for this user")
            await self.unwatch_access()
            self.release()
            await self.close()  # before accept(): the handshake is refused
            return
        await self.accept()
        try:
            await self.attach_document(role, user)
        except Exception:
            # The channel layer or the database failed: the client reconnects later.
            logger.exception("Paintbrush: attaching a document socket failed; closing it")
            self.close_later(TRY_AGAIN_LATER)  # disconnect() detaches what was attached

    async def disconnect(self, code: int) -> None:
        self.release()
        await self.detach_document()
        await self.unwatch_access()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # Read-only socket: anything the client sends is ignored.
        return None
