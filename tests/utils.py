"""Helpers shared by the socket tests: connect as a user, subscribe, read frames."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from project.asgi import application

IN_MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def _session_cookie(user: Any) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def session_cookie(user: Any) -> bytes:
    """A signed-in session for ``user`` (signing in saves the user: last_login)."""
    return await sync_to_async(_session_cookie)(user)


async def ws_connect(
    path: str = "/ws",
    user: Any = None,
    origin: str | None = "http://localhost",
    app: Any = None,
    cookie: bytes | None = None,
) -> WebsocketCommunicator:
    headers = [(b"host", b"localhost")]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    if user is not None and cookie is None:
        cookie = await session_cookie(user)
    if cookie is not None:
        headers.append((b"cookie", cookie))
    communicator = WebsocketCommunicator(app or application, path, headers=headers)
    connected, _ = await communicator.connect()
    assert connected, f"handshake to {path} refused"
    return communicator


async def subscribe(communicator: WebsocketCommunicator, resource: str, snapshot: bool = False) -> Any:
    message: dict[str, Any] = {"action": "opendoc", "resource": resource}
    if snapshot:
        message["snapshot"] = True
    await communicator.send_json_to(message)
    opened = await communicator.receive_json_from(timeout=5)
    assert opened == {"type": "opened", "resource": resource}, opened
    if snapshot:
        frame = await communicator.receive_json_from(timeout=5)
        assert frame["action"] == "snapshot" and frame["resource"] == resource, frame
        return frame["items"]
    return None


async def receive(communicator: WebsocketCommunicator) -> Any:
    return await communicator.receive_json_from(timeout=5)
