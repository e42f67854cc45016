"""
What every Paintbrush socket is, whatever it carries (events on ``/ws``, a role
document on ``/ws/doc``): a Channels consumer with a bounded outbox
(``paintbrush.outbox``), no channel of its own (messages come through the process hub),
a cap on the sockets one client may hold open in one server process, and one way to
end.

    class LiveConsumer(AccessWatchMixin, PaintbrushSocket):
        async def connect(self):
            if not await self.admit():
                return                   # closed with TOO_MANY_SOCKETS
            membership = await self.join(group, on_message, on_lost)   # left on release
            ...
        async def released(self):       # the socket is gone: drop what join() did not record
            ...

One close path. ``close()`` is idempotent: whatever asks first (a flood of bad frames,
a slow socket, an access change, the client) closes the socket once, and every later
close is a no-op; frames still queued behind it are not answered. ``release()`` gives
back everything the socket holds (its outbox, its place among its client's sockets,
its hub memberships, what ``released()`` adds) exactly once, whether the client closed,
the server closed, or the consumer failed: it runs when the consumer ends, however it
ends, not only on a disconnect message a failed consumer never reads.

Close codes: Daphne (``runserver``) sends only 1000 and 3000-4999 and leaves the socket
open when asked for another one; there a code 1xxx goes out as 4xxx, as the wire
contract says (``close_code``).
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer

from . import metrics
from .hub import SOCKETS_USE_THE_HUB, Hub, Membership, get_hub
from .outbox import Outbox
from .settings import pb_settings

logger = logging.getLogger("paintbrush")

__all__ = ["POLICY_VIOLATION", "TOO_MANY_SOCKETS", "PaintbrushSocket", "SocketState", "client_key", "close_code"]

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


def close_code(scope: dict[str, Any], code: int) -> int:
    """``code`` as the server in ``scope`` can send it. Servers that state the ASGI
    spec version they implement (uvicorn, Hypercorn, Granian) send any code; Daphne
    states none and refuses every code but 1000 and 3000-4999, leaving the socket open:
    there 1xxx becomes 4000 plus its last three digits (1008 -> 4008), which clients
    treat alike (docs/protocol.md, close codes)."""
    if code == 1000 or 3000 <= code <= 4999 or "spec_version" in (scope.get("asgi") or {}):
        return code
    return 4000 + code % 1000


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


class SocketState(enum.Enum):
    """Where a socket is in its life; it only moves forward."""

    #: The handshake is not answered yet.
    CONNECTING = "connecting"
    #: Accepted: frames go both ways.
    OPEN = "open"
    #: ``close()`` was called, or the client went away: nothing more goes out, and
    #: frames still arriving are not answered.
    CLOSING = "closing"
    #: Released: everything it held is given back.
    CLOSED = "closed"


class PaintbrushSocket(AsyncWebsocketConsumer):
    """Base of Paintbrush's consumers."""

    channel_layer_alias = SOCKETS_USE_THE_HUB
    #: Made by ``admit()``, the first thing a Paintbrush socket's ``connect()`` does
    #: (``_outbox()`` is None before it).
    outbox: Outbox
    state = SocketState.CONNECTING
    _client: str | None = None
    #: Hub memberships taken with join(), left on release (made on the first join: an
    #: idle socket should cost little memory).
    _memberships: dict[Membership, None] | None = None
    _closer: asyncio.Task[None] | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # However the consumer ends: a disconnect, an error the server raised into
            # it, a cancellation. Its place, memberships and subscriptions never outlive it.
            await self.release()

    async def admit(self) -> bool:
        """Count the socket among its client's, unless the client already holds
        ``MAX_SOCKETS_PER_CLIENT``: then it is accepted and closed at once with
        ``TOO_MANY_SOCKETS``, so the client learns why (a refused handshake says
        nothing), and False is returned. An admitted socket is accepted by the
        consumer, once it has checked the rest."""
        send = _wire_send(self.base_send)
        outbox = self.outbox = Outbox(lambda text: send(_frame(text)), self.close_with)
        client = outbox.client = client_key(self.scope)
        if _open[client] >= pb_settings.MAX_SOCKETS_PER_CLIENT:
            self.log_refusal("too_many_sockets", code=TOO_MANY_SOCKETS)
            await self.accept()
            await self.close(code=TOO_MANY_SOCKETS, reason="Too many sockets from this client.")
            return False
        _open[client] += 1
        self._client = client
        metrics.SOCKETS.inc()
        return True

    # -- hub memberships -------------------------------------------------------------------

    @property
    def hub(self) -> Hub:
        """This process's hub for ``PAINTBRUSH["CHANNEL_LAYER"]`` (``paintbrush.hub``)."""
        return get_hub(get_channel_layer(pb_settings.CHANNEL_LAYER))

    async def join(self, group: str, on_message: Callable[[str], None], on_lost: Callable[[str], None]) -> Membership:
        """Join ``group`` through the process hub; the membership is left on release."""
        membership = await self.hub.join(group, on_message, on_lost)
        if self._memberships is None:
            self._memberships = {}
        self._memberships[membership] = None
        if self.state is SocketState.CLOSED:  # released while the join waited on the layer
            await self.leave(membership)
        return membership

    async def leave(self, membership: Membership) -> None:
        if self._memberships is None or membership not in self._memberships:
            return  # left already
        del self._memberships[membership]
        await self.hub.leave(membership)

    # -- the end ---------------------------------------------------------------------------

    @property
    def closing(self) -> bool:
        """Nothing more goes out (``CLOSING`` or ``CLOSED``)."""
        return self.state in {SocketState.CLOSING, SocketState.CLOSED}

    async def accept(self, subprotocol: str | None = None, headers: Any = None) -> None:
        await super().accept(subprotocol, headers)
        if self.state is SocketState.CONNECTING:
            self.state = SocketState.OPEN

    async def refuse(self, reason: str, **fields: Any) -> None:
        """Refuse the handshake (the server answers 403), counted and logged with
        ``reason`` (``paintbrush.metrics``); everything taken so far is released."""
        self.log_refusal(reason, **fields)
        await self.close()

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        """Close the socket, once: later calls do nothing. Before ``accept()`` this
        refuses the handshake. Everything the socket holds is released."""
        if self.closing:
            return
        self.state = SocketState.CLOSING
        outbox = self._outbox()
        if outbox is not None:
            outbox.close()  # nothing may follow the close frame
        code = close_code(self.scope, code) if isinstance(code, int) and not isinstance(code, bool) else code
        try:
            await super().close(code=code, reason=reason)
        except Exception:  # the connection is already gone: nothing to tell the client
            logger.debug("Paintbrush: closing a socket failed", exc_info=True)
        await self.release()

    async def close_with(self, code: int) -> None:
        await self.close(code=code)

    def close_later(self, code: int) -> None:
        """Close from a callback that must not wait (the hub's)."""
        if not self.closing and self._closer is None:
            self._closer = asyncio.get_running_loop().create_task(self.close(code=code))

    async def release(self) -> None:
        """The socket is gone: give back everything it holds, once."""
        if self.state is SocketState.CLOSED:
            return
        self.state = SocketState.CLOSED
        outbox = self._outbox()
        if outbox is not None:
            outbox.close()
        if self._client is not None:
            metrics.SOCKETS.dec()
            _open[self._client] -= 1
            if _open[self._client] <= 0:
                del _open[self._client]
            self._client = None
        try:
            await self.released()
        finally:
            for membership in list(self._memberships or ()):
                try:
                    await self.leave(membership)
                except Exception:  # the layer is down: the group expires there by itself
                    logger.warning("Paintbrush: leaving %r failed", membership.group, exc_info=True)

    async def released(self) -> None:
        """Hook: give back what the socket holds beyond its hub memberships."""

    def _outbox(self) -> Outbox | None:
        outbox: Outbox | None = self.__dict__.get("outbox")
        return outbox

    def log_refusal(self, reason: str, **fields: Any) -> None:
        """Count and log a refusal of this socket's client (``paintbrush.metrics``)."""
        metrics.refused(reason, client_key(self.scope), path=self.scope.get("path", ""), **fields)

    async def websocket_receive(self, message: dict[str, Any]) -> None:
        if self.closing:
            return  # frames that were queued behind the close: not answered
        await super().websocket_receive(message)

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        await self.release()
        await super().websocket_disconnect(message)
