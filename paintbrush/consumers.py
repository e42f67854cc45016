"""
Where a socket subscribes: the multiplexed ``/ws`` consumer of the wire protocol
(``docs/protocol.md``, section 2).

    {"action": "opendoc",  "resource": "todos", "snapshot": true}
    {"action": "closedoc", "resource": "todos"}

``opendoc`` asks the resource's DRF viewset whether the socket's user may list it
(``paintbrush.permissions``), joins the event groups of that user's keys
(``Resource.subscription_keys``) through the process hub, answers ``opened``, then (if
asked) the snapshot, and only then the events that arrived meanwhile, so a client never
sees an event before its snapshot. Every failure is answered with an error frame and
the socket stays open. The reserved resource ``doc`` is the user's role document
(``paintbrush.documents``).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.contrib.auth.models import AnonymousUser

from . import deltas, encoding, permissions
from .access import AccessWatchMixin
from .documents.consumers import SERVICE_RESTART, DocumentSocketMixin, role_for
from .exceptions import BadJSON, BadMessage, Forbidden, SocketError, TooLarge, UnknownAction, UnknownResource
from .groups import event_group
from .hub import SOCKETS_USE_THE_HUB, Membership, get_hub
from .resources import Resource, site
from .settings import pb_settings

__all__ = ["LiveConsumer"]

#: The reserved resource name of the role document on the multiplexed socket.
DOC = "doc"


@dataclass(eq=False)
class _Subscription:
    resource: str
    memberships: list[Membership] = field(default_factory=list)
    #: Events held until ``opened`` (and the snapshot) went out; None once live.
    held: list[str] | None = field(default_factory=list)


class LiveConsumer(AccessWatchMixin, DocumentSocketMixin, AsyncWebsocketConsumer):
    """One socket per page; any number of resource subscriptions on it."""

    channel_layer_alias = SOCKETS_USE_THE_HUB

    async def connect(self) -> None:
        self.subscriptions: dict[str, _Subscription] = {}
        self._errors: deque[float] = deque()  # when recent bad frames came
        self._closing = False
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
            return encoding.decode(text_data, max_depth=pb_settings.MAX_JSON_DEPTH)
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
        await self.send(text_data=encoding.encode(frame))

    # -- actions --------------------------------------------------------------------

    async def opendoc(self, message: dict[str, Any]) -> None:
        if self.resource_name(message) == DOC:
            return await self.open_document()
        resource = self.resource_of(message)
        snapshot = message.get("snapshot") is True
        # Without AuthMiddlewareStack there is no user: treat the socket as signed out.
        user = self.scope.get("user") or AnonymousUser()
        view = await database_sync_to_async(permissions.list_view)(resource, user)
        subscription = self.subscriptions.get(resource.name)
        if subscription is None:
            subscription = self.subscriptions[resource.name] = _Subscription(resource.name)
            hub = get_hub(get_channel_layer(pb_settings.CHANNEL_LAYER))
            for key in resource.subscription_keys(user):
                membership = await hub.join(
                    event_group(resource.name, key), partial(self._on_event, subscription), self.on_lost
                )
                subscription.memberships.append(membership)
        elif subscription.held is None:
            subscription.held = []
        await self.send(text_data=encoding.encode({"type": "opened", "resource": resource.name}))
        if snapshot:
            # Read after joining the groups: a change committed meanwhile is either in
            # the snapshot, or held and sent after it (clients apply both by version).
            items = await database_sync_to_async(permissions.snapshot_items)(view)
            await self.send(text_data=encoding.encode(deltas.snapshot_event(resource.name, items)))
        await self._release(subscription)

    async def open_document(self) -> None:
        user = self.scope.get("user")
        role = await role_for(user)
        if role is None:
            raise Forbidden("The role document needs a signed-in user with a role.")
        await self.send(text_data=encoding.encode({"type": "opened", "resource": DOC}))
        if self.doc_role is None:
            await self.attach_document(role, user)  # sends the current document
        elif self._doc_text is not None:
            await self.send(text_data=self._doc_text)

    async def closedoc(self, message: dict[str, Any]) -> None:
        if self.resource_name(message) == DOC:
            await self.detach_document()
            return await self.send(text_data=encoding.encode({"type": "closed", "resource": DOC}))
        resource = self.resource_of(message)
        await self._unsubscribe(resource.name)
        await self.send(text_data=encoding.encode({"type": "closed", "resource": resource.name}))

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
        for membership in subscription.memberships:
            await hub.leave(membership)

    # -- from the hub -------------------------------------------------------------------

    async def _on_event(self, subscription: _Subscription, text: str) -> None:
        if self.subscriptions.get(subscription.resource) is not subscription:
            return  # closed meanwhile
        if subscription.held is not None:
            subscription.held.append(text)
        else:
            await self.send(text_data=text)

    async def on_lost(self) -> None:
        # The channel layer was unreachable: events (or an access notice) may be lost.
        # Closing makes the client reconnect and take fresh snapshots.
        if not self._closing:
            self._closing = True
            await self.close(code=SERVICE_RESTART)
