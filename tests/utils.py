"""Helpers shared by the socket tests: the shipped kit (``paintbrush.testing``), under the
names the older test modules import, and the in-memory channel layer they run on."""

from __future__ import annotations

from typing import Any

from channels.testing import WebsocketCommunicator

from paintbrush.testing import connect, receive, session_cookie, subscribe

__all__ = ["IN_MEMORY", "receive", "session_cookie", "subscribe", "ws_connect"]

IN_MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


async def ws_connect(path: str = "/ws", user: Any = None, cookie: bytes | None = None) -> WebsocketCommunicator:
    """``paintbrush.testing.connect``, signed in by ``user`` or by a ``session_cookie``."""
    return await connect(path, user, headers=[] if cookie is None else [(b"cookie", cookie)])
