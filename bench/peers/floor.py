"""
The floor: a pure asyncio server with the ``websockets`` package, no Django, no database.

    python bench/peers/floor.py --http-port 8001 --ws-port 8002 [--uvloop]

WebSocket ``/ws``: the first message a socket sends (Paintbrush's ``opendoc``) subscribes
it, answered ``{"type": "opened", ...}``. HTTP ``POST /api/todos`` with ``{"title": ...}``
(a tiny HTTP/1.1 handler on its own port: ``websockets`` serves only GET) builds the
event Paintbrush would send, encodes it once, and hands that one frame to every
subscribed socket with ``websockets.broadcast`` before answering 201.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import uuid

from websockets.asyncio.server import ServerConnection, broadcast, serve

OPENED = json.dumps({"type": "opened", "resource": "todos"})
subscribers: set[ServerConnection] = set()


async def socket_handler(connection: ServerConnection) -> None:
    try:
        async for _message in connection:
            if connection not in subscribers:
                subscribers.add(connection)
                await connection.send(OPENED)
    finally:
        subscribers.discard(connection)


def _response(status: bytes, body: bytes) -> bytes:
    head = b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (status, len(body))
    return head + body


def create(body: bytes) -> bytes:
    """One write: the event encoded once, broadcast, and the response."""
    try:
        title = json.loads(body)["title"]
    except (ValueError, KeyError, TypeError):
        return _response(b"400 Bad Request", b'{"title":["This field is required."]}')
    item = {
        "id": str(uuid.uuid4()),
        "title": str(title),
        "done": False,
        "created_at": datetime.datetime.now(datetime.UTC).isoformat(),
        "version": 1,
    }
    broadcast(subscribers, json.dumps({"resource": "todos", "action": "create", "item": item}, separators=(",", ":")))
    return _response(b"201 Created", json.dumps(item).encode())


async def http_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        while True:  # keep-alive
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = await reader.readexactly(length)
            request_line = head.split(b"\r\n", 1)[0].split()
            if request_line[:2] == [b"POST", b"/api/todos"]:
                writer.write(create(body))
            else:
                writer.write(_response(b"404 Not Found", b"{}"))
    writer.close()


async def main(http_port: int, ws_port: int) -> None:
    async with serve(socket_handler, "127.0.0.1", ws_port, compression=None, max_queue=None):
        http = await asyncio.start_server(http_handler, "127.0.0.1", http_port)
        async with http:
            await http.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--ws-port", type=int, required=True)
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop instead of asyncio's default loop")
    args = parser.parse_args()
    factory = None
    if args.uvloop:
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main(args.http_port, args.ws_port))
