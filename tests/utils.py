"""Helpers shared by the socket tests: the shipped kit (``paintbrush.testing``), under the
names the older test modules import, the in-memory channel layer they run on, and a
reader of Paintbrush's metrics."""

from __future__ import annotations

from typing import Any

from channels.testing import WebsocketCommunicator

from paintbrush import metrics
from paintbrush.testing import connect, receive, session_cookie, subscribe

__all__ = ["IN_MEMORY", "metric", "receive", "session_cookie", "subscribe", "ws_connect"]

IN_MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


async def ws_connect(path: str = "/ws", user: Any = None, cookie: bytes | None = None) -> WebsocketCommunicator:
    """``paintbrush.testing.connect``, signed in by ``user`` or by a ``session_cookie``."""
    return await connect(path, user, headers=[] if cookie is None else [(b"cookie", cookie)])


def metric(name: str, **labels: str) -> float:
    """The current value of a sample of ``paintbrush.metrics``'s registry (0 if none yet)."""
    return metrics.registry.get_sample_value(name, labels) or 0.0
