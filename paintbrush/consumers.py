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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer

from . import access, deltas
from .exceptions import BadJSON, BadMessage, SocketError, TooLarge, UnknownAction, UnknownResource
from .hub import get_hub
from .resources import Resource, site
from .settings import pb_settings

__all__ = ["LiveConsumer"]


@dataclass
class _Subscription:
    resource: str
    groups: list[str]
    #: Events held until ``opened`` (and the snapshot) went out; None once live.
    held: list[str] | None = field(default_factory=list)


class LiveConsumer(AsyncWebsocketConsumer):
    """One socket per page; any number of resource subscriptions on it."""

    # Events reach sockets through the process hub, not per-socket channels, so the
    # consumer needs no channel of its own (an alias that names no layer gives None).
    channel_layer_alias = "paintbrush.sockets-use-the-hub"

    async def connect(self) -> None:
        self.subscriptions: dict[str, _Subscription] = {}
        self._group_owner: dict[str, str] = {}
        # Whitelist: a client-supplied action never names a method.
        self.actions: dict[str, Callable[[dict[str, Any]], Awaitable[None]]] = {
            "opendoc": self.opendoc,
            "closedoc": self.closedoc,
        }
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for name in list(getattr(self, "subscriptions", {})):
            await self._unsubscribe(name)

    # -- incoming frames ----------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        message: dict[str, Any] | None = None
        try:
            message = self.parse(text_data, bytes_data)
            action = message.get("action")
            if not isinstance(action, str):
                raise BadMessage('A message is a JSON object with a string "action".')
            handler = self.actions.get(action)
            if handler is None:
                raise UnknownAction(f"Unknown action {action!r}; expected one of {sorted(self.actions)}.")
            await handler(message)
        except SocketError as exc:
            await self.send_error(exc, message)

    def parse(self, text_data: str | None, bytes_data: bytes | None) -> dict[str, Any]:
        limit = pb_settings.MAX_FRAME_BYTES
        size = len(bytes_data) if bytes_data is not None else len((text_data or "").encode())
        if size > limit:
            raise TooLarge(f"Frame of {size} bytes is over the limit of {limit} bytes.")
        if text_data is None:
            raise BadJSON("Binary frames are not accepted; send JSON text.")
        try:
            message = json.loads(text_data)
        except ValueError as exc:
            raise BadJSON(f"The frame is not valid JSON: {exc}.") from exc
        if not isinstance(message, dict):
            raise BadMessage(f"A message is a JSON object, not {type(message).__name__}.")
        return message

    def resource_of(self, message: dict[str, Any]) -> Resource:
        name = message.get("resource")
        if not isinstance(name, str):
            raise BadMessage(f'"{message.get("action")}" needs a string "resource".')
        resource = site.get(name)
        if resource is None or not resource.live:
            raise UnknownResource(f"No live resource named {name!r}.")
        return resource

    async def send_error(self, exc: SocketError, request: dict[str, Any] | None) -> None:
        frame: dict[str, Any] = {"type": "error", "error": exc.code, "message": str(exc)}
        if request is not None:
            frame["request"] = request
        await self.send(text_data=deltas.encode(frame))

    # -- actions --------------------------------------------------------------------

    async def opendoc(self, message: dict[str, Any]) -> None:
        resource = self.resource_of(message)
        snapshot = message.get("snapshot") is True
        user = self.scope.get("user")
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

    async def closedoc(self, message: dict[str, Any]) -> None:
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
        subscription = self.subscriptions.get(self._group_owner.get(group, ""))
        if subscription is None:
            return
        if subscription.held is not None:
            subscription.held.append(text)
        else:
            await self.send(text_data=text)
