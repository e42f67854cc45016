"""
Where a socket subscribes: the multiplexed ``/ws`` consumer of PROTOCOL.md section 2.

    {"action": "opendoc",  "resource": "todos", "snapshot": true}
    {"action": "closedoc", "resource": "todos"}

``opendoc`` asks the resource's DRF viewset whether the socket's user may list it,
joins the event groups of that user's keys (``Resource.subscription_keys``) through
the process hub, answers ``opened``, then (if asked) the snapshot, and only then the
events that arrived meanwhile, so a client never sees an event before its snapshot.
Every failure is answered with an error frame and the socket stays open.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ObjectDoesNotExist

from . import access, deltas
from .doc_hub import get_doc_hub
from .documents import Role, roles
from .exceptions import BadJSON, BadMessage, Forbidden, SocketError, TooLarge, UnknownAction, UnknownResource
from .hub import get_hub
from .resources import Resource, site
from .settings import pb_settings

__all__ = ["DocConsumer", "LiveConsumer"]

#: The reserved resource name of the role document on the multiplexed socket.
DOC = "doc"

#: WebSocket close code 1012 "service restart": reconnect and resync.
SERVICE_RESTART = 1012


class UserSocketMixin:
    """What every Paintbrush socket does for its user: close when the user's access
    changes (``paintbrush.access``), and hold its role document (``paintbrush.doc_hub``)."""

    doc_role: Role | None = None
    doc_group: str | None = None
    access_group: str | None = None
    _doc_seq = -1
    _doc_text: str | None = None

    if TYPE_CHECKING:  # provided by AsyncWebsocketConsumer
        scope: dict[str, Any]

        async def send(
            self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False
        ) -> None: ...

        async def close(self, code: int | None = None, reason: str | None = None) -> None: ...

    async def watch_access(self) -> bool:
        """Listen for changes of the user's access (they close this socket), then read
        the user again: a change committed before we listened is in that read. False
        if the user is gone or deactivated meanwhile."""
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            return True
        self.access_group = access.user_group(user.pk)
        await get_hub(get_channel_layer(pb_settings.CHANNEL_LAYER)).join(self.access_group, self)
        try:
            await database_sync_to_async(user.refresh_from_db)()
        except ObjectDoesNotExist:
            return False
        return bool(user.is_active)

    async def unwatch_access(self) -> None:
        if self.access_group is not None:
            await get_hub(get_channel_layer(pb_settings.CHANNEL_LAYER)).leave(self.access_group, self)
            self.access_group = None

    async def deliver(self, group: str, text: str) -> None:
        if group == self.access_group:
            # What this socket may read was decided under the old rules.
            await self.close(code=access.ACCESS_CHANGED)

    async def lost(self) -> None:
        # The channel layer was unreachable: events (or an access notice) may be lost.
        # Closing makes the client reconnect and take fresh snapshots.
        await self.close(code=SERVICE_RESTART)

    async def attach_document(self, role: Role, user: Any) -> None:
        self.doc_role, self.doc_group = role, role.group_of(user)
        await get_doc_hub(get_channel_layer(pb_settings.CHANNEL_LAYER)).attach(self, role, self.doc_group)

    async def detach_document(self) -> None:
        if self.doc_role is not None and self.doc_group is not None:
            hub = get_doc_hub(get_channel_layer(pb_settings.CHANNEL_LAYER))
            await hub.detach(self, self.doc_role, self.doc_group)
        self.doc_role = self.doc_group = None
        self._doc_seq, self._doc_text = -1, None

    async def push_document(self, text: str, seq: int) -> None:
        # Not newer than what this socket has (its first document racing a push).
        if seq <= self._doc_seq:
            return
        self._doc_seq, self._doc_text = seq, text
        await self.send(text_data=text)


async def _role_for(user: Any) -> Role | None:
    role: Role | None = await database_sync_to_async(roles.role_for)(user)
    return role


@dataclass
class _Subscription:
    resource: str
    groups: list[str]
    #: Events held until ``opened`` (and the snapshot) went out; None once live.
    held: list[str] | None = field(default_factory=list)


class LiveConsumer(UserSocketMixin, AsyncWebsocketConsumer):
    """One socket per page; any number of resource subscriptions on it."""

    # Events reach sockets through the process hub, not per-socket channels, so the
    # consumer needs no channel of its own (an alias that names no layer gives None).
    channel_layer_alias = "paintbrush.sockets-use-the-hub"

    async def connect(self) -> None:
        self.subscriptions: dict[str, _Subscription] = {}
        self._errors: deque[float] = deque()  # when recent bad frames came
        self._group_owner: dict[str, str] = {}
        # Whitelist: a client-supplied action never names a method.
        self.actions: dict[str, Callable[[dict[str, Any]], Awaitable[None]]] = {
            "opendoc": self.opendoc,
            "closedoc": self.closedoc,
        }
        if not await self.watch_access():
            await self.unwatch_access()
            await self.close()  # before accept(): the handshake is refused
            return
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for name in list(getattr(self, "subscriptions", {})):
            await self._unsubscribe(name)
        await self.detach_document()
        await self.unwatch_access()

    # -- incoming frames ----------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        message: Any = None
        try:
            message = self.parse(text_data, bytes_data)
            if not isinstance(message, dict):
                raise BadMessage(f"A message is a JSON object, not {type(message).__name__}.")
            action = message.get("action")
            if not isinstance(action, str):
                raise BadMessage('A message is a JSON object with a string "action".')
            handler = self.actions.get(action)
            if handler is None:
                raise UnknownAction(f"Unknown action {action!r}; expected one of {sorted(self.actions)}.")
            await handler(message)
        except SocketError as exc:
            await self.send_error(exc, message)

    def parse(self, text_data: str | None, bytes_data: bytes | None) -> Any:
        limit = pb_settings.MAX_FRAME_BYTES
        size = len(bytes_data) if bytes_data is not None else len((text_data or "").encode())
        if size > limit:
            raise TooLarge(f"Frame of {size} bytes is over the limit of {limit} bytes.")
        if text_data is None:
            raise BadJSON("Binary frames are not accepted; send JSON text.")
        try:
            return json.loads(text_data)
        except ValueError as exc:
            raise BadJSON(f"The frame is not valid JSON: {exc}.") from exc

    def resource_name(self, message: dict[str, Any]) -> str:
        name = message.get("resource")
        if not isinstance(name, str):
            raise BadMessage(f'"{message.get("action")}" needs a string "resource".')
        return name

    def resource_of(self, message: dict[str, Any]) -> Resource:
        name = self.resource_name(message)
        resource = site.get(name)
        if resource is None or not resource.live:
            raise UnknownResource(f"No live resource named {name!r}.")
        return resource

    async def send_error(self, exc: SocketError, request: Any) -> None:
        now = time.monotonic()
        while self._errors and now - self._errors[0] >= 60.0:
            self._errors.popleft()
        self._errors.append(now)
        if len(self._errors) > pb_settings.MAX_ERRORS_PER_MINUTE:
            await self.close(code=1008)  # policy violation: the client floods us
            return
        frame: dict[str, Any] = {"type": "error", "error": exc.code, "message": str(exc)}
        if request is not None:
            frame["request"] = request
        await self.send(text_data=deltas.encode(frame))

    # -- actions --------------------------------------------------------------------

    async def opendoc(self, message: dict[str, Any]) -> None:
        if self.resource_name(message) == DOC:
            return await self.open_document()
        resource = self.resource_of(message)
        snapshot = message.get("snapshot") is True
        # Without AuthMiddlewareStack there is no user: treat the socket as signed out.
        user = self.scope.get("user") or AnonymousUser()
        view = await database_sync_to_async(access.list_view)(resource, user)
        subscription = self.subscriptions.get(resource.name)
        if subscription is None:
            groups = [resource.group_name(k) for k in resource.subscription_keys(user)]
            subscription = self.subscriptions[resource.name] = _Subscription(resource.name, groups)
            hub = get_hub(get_channel_layer(pb_settings.CHANNEL_LAYER))
            for group in groups:
                self._group_owner[group] = resource.name
                await hub.join(group, self)
        elif subscription.held is None:
            subscription.held = []
        await self.send(text_data=deltas.encode({"type": "opened", "resource": resource.name}))
        if snapshot:
            # Read after joining the groups: a change committed meanwhile is either in
            # the snapshot, or held and sent after it (clients apply both by version).
            items = await database_sync_to_async(access.snapshot_items)(view)
            await self.send(text_data=deltas.encode(deltas.snapshot_event(resource.name, items)))
        await self._release(subscription)

    async def open_document(self) -> None:
        user = self.scope.get("user")
        role = await _role_for(user)
        if role is None:
            raise Forbidden("The role document needs a signed-in user with a role.")
        await self.send(text_data=deltas.encode({"type": "opened", "resource": DOC}))
        if self.doc_role is None:
            await self.attach_document(role, user)  # sends the current document
        elif self._doc_text is not None:
            await self.send(text_data=self._doc_text)

    async def closedoc(self, message: dict[str, Any]) -> None:
        if self.resource_name(message) == DOC:
            await self.detach_document()
            return await self.send(text_data=deltas.encode({"type": "closed", "resource": DOC}))
        resource = self.resource_of(message)
        await self._unsubscribe(resource.name)
        await self.send(text_data=deltas.encode({"type": "closed", "resource": resource.name}))

    async def _release(self, subscription: _Subscription) -> None:
        held = subscription.held
        while held:
            await self.send(text_data=held.pop(0))
        subscription.held = None  # no await since the loop saw it empty: nothing is lost

    async def _unsubscribe(self, name: str) -> None:
        subscription = self.subscriptions.pop(name, None)
        if subscription is None:
            return
        hub = get_hub(get_channel_layer(pb_settings.CHANNEL_LAYER))
        for group in subscription.groups:
            self._group_owner.pop(group, None)
            await hub.leave(group, self)

    # -- from the hub -------------------------------------------------------------------

    async def deliver(self, group: str, text: str) -> None:
        if group == self.access_group:
            return await super().deliver(group, text)
        subscription = self.subscriptions.get(self._group_owner.get(group, ""))
        if subscription is None:
            return
        if subscription.held is not None:
            subscription.held.append(text)
        else:
            await self.send(text_data=text)


class DocConsumer(UserSocketMixin, AsyncWebsocketConsumer):
    """``/ws/doc``: the user's role document on connect, then after every change."""

    channel_layer_alias = LiveConsumer.channel_layer_alias

    async def connect(self) -> None:
        user = self.scope.get("user")
        role = await _role_for(user) if await self.watch_access() else None
        if role is None:
            await self.unwatch_access()
            await self.close()  # before accept(): the handshake is refused
            return
        await self.accept()
        await self.attach_document(role, user)

    async def disconnect(self, code: int) -> None:
        await self.detach_document()
        await self.unwatch_access()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # Read-only socket: anything the client sends is ignored.
        return None
