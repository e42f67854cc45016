"""
What every Paintbrush socket is, whatever it carries (events on ``/ws``, a role
document on ``/ws/doc``): a Channels consumer with a bounded outbox
(``paintbrush.outbox``), no channel of its own (messages come through the process hub),
and a cap on the sockets one client may hold open in one server process.

    class LiveConsumer(AccessWatchMixin, PaintbrushSocket):
        async def connect(self):
            if not await self.admit():
                return                   # refused, or closed with TOO_MANY_SOCKETS
            ...
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer

from . import metrics
from .hub import SOCKETS_USE_THE_HUB
from .outbox import Outbox
from .settings import pb_settings

__all__ = ["POLICY_VIOLATION", "TOO_MANY_SOCKETS", "PaintbrushSocket", "client_key"]

#: Close code when a client opens more than ``MAX_SOCKETS_PER_CLIENT`` sockets.
TOO_MANY_SOCKETS = 4029
#: Close code 1008 "policy violation": a client flooding the socket with bad frames.
POLICY_VIOLATION = 1008

#: Open sockets per client in this process.
_open: Counter[str] = Counter()


def client_key(scope: dict[str, Any]) -> str:
    """Who a socket belongs to, for the per-client limit: its signed-in user, else the
    address it comes from (behind a proxy, the server must be told to trust its
    forwarded-for header, or every visitor shares the proxy's address)."""
    user = scope.get("user")
    if user is not None and getattr(user, "is_authenticated", False):
        return f"user:{user.pk}"
    client = scope.get("client") or ("?",)
    return f"address:{client[0]}"


_Send = Callable[[dict[str, Any]], Coroutine[Any, Any, None]]


def _wire_send(base_send: _Send) -> _Send:
    """The server's own send, under Channels' session middleware when there is one.

    ``SessionMiddleware`` wraps every send to save the session before an HTTP response
    starts; a WebSocket frame never saves it, yet the wrapper's checks would run for
    every frame of every socket. Frames go straight to the server."""
    wrapper = getattr(base_send, "__self__", None)
    if type(wrapper).__name__ == "InstanceSessionWrapper" and "websocket.send" not in getattr(
        wrapper, "save_message_types", ()
    ):
        real: _Send = wrapper.real_send  # type: ignore[union-attr]
        return real
    return base_send


#: The last frame made, by text: a fan-out hands one text to every socket, and servers
#: only read the message they are given, so one dict serves all of them.
_last_frame: list[Any] = [None, None]


def _frame(text: str) -> dict[str, Any]:
    if _last_frame[0] is not text:
        _last_frame[0], _last_frame[1] = text, {"type": "websocket.send", "text": text}
    frame: dict[str, Any] = _last_frame[1]
    return frame


class PaintbrushSocket(AsyncWebsocketConsumer):
    """Base of Paintbrush's consumers."""

    channel_layer_alias = SOCKETS_USE_THE_HUB
    outbox: Outbox
    _client: str | None = None

    async def admit(self) -> bool:
        """Accept the handshake unless the client is over ``MAX_SOCKETS_PER_CLIENT``;
        then the socket is accepted and closed at once with ``TOO_MANY_SOCKETS``, so the
        client learns why (a refused handshake says nothing)."""
        send = _wire_send(self.base_send)
        self.outbox = Outbox(lambda text: send(_frame(text)), self.close_with)
        client = self.outbox.client = client_key(self.scope)
        if _open[client] >= pb_settings.MAX_SOCKETS_PER_CLIENT:
            self.log_refusal("too_many_sockets", code=TOO_MANY_SOCKETS)
            await self.accept()
            await self.close(code=TOO_MANY_SOCKETS, reason="Too many sockets from this client.")
            return False
        _open[client] += 1
        self._client = client
        metrics.SOCKETS.inc()
        return True

    def release(self) -> None:
        """The socket is gone: stop its outbox and give back its place."""
        if hasattr(self, "outbox"):
            self.outbox.close()
        if self._client is not None:
            metrics.SOCKETS.dec()
            _open[self._client] -= 1
            if _open[self._client] <= 0:
                del _open[self._client]
            self._client = None

    def log_refusal(self, reason: str, **fields: Any) -> None:
        """Count and log a refusal of this socket's client (``paintbrush.metrics``)."""
        metrics.refused(reason, client_key(self.scope), path=self.scope.get("path", ""), **fields)

    async def close_with(self, code: int) -> None:
        await self.close(code=code)

    def close_later(self, code: int) -> None:
        """Close from a callback that must not wait (the hub's)."""
        if not self.outbox.closed:
            self.outbox.close()
            asyncio.get_running_loop().create_task(self.close(code=code))

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        self.release()
        await super().websocket_disconnect(message)
