"""
A harness for fault tests against the servers users run: real server processes of the
project (Daphne now; the command is one function, so uvicorn can follow), a private
Redis the test may kill and restart, and a WebSocket client that applies the wire
contract's convergence rules (PROTOCOL.md section 2) the way the shipped client does.

    with RedisServer() as redis:
        with ServerProcess(redis_url=redis.url, prefix="pbfault1234") as server:
            client = LiveClient(server.ws_url)
            await client.start()
            await client.open("todos")
            http_json("POST", server.url("/api/todos"), {"title": "x"})
            truth = rest_state(server, "todos")
            assert await client.wait_for(lambda: client.state("todos") == truth, timeout=10)
            redis.stop()      # SIGKILL
            redis.start()     # the same port again
            await client.stop()

Waits are on conditions with a deadline (a server's port accepting HTTP, a client state
equal to the database): nothing here sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.typing import Origin

ROOT = Path(__file__).resolve().parent.parent

__all__ = [
    "REDIS_SERVER",
    "LiveClient",
    "RedisServer",
    "ServerProcess",
    "Service",
    "database_url",
    "free_port",
    "http_call",
    "http_json",
    "rest_state",
    "server_command",
]

#: The redis-server executable, or None when it is not installed.
REDIS_SERVER = shutil.which("redis-server")


def free_port() -> int:
    """A loopback TCP port nobody listens on (now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until(ready: Callable[[], bool], timeout: float, what: str, alive: Callable[[], bool] | None = None) -> None:
    """Poll a readiness probe: servers announce nothing we could await."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if alive is not None and not alive():
            raise RuntimeError(f"{what}: the process exited")
        time.sleep(0.05)
    raise RuntimeError(f"{what}: not ready within {timeout} s")


def database_url() -> str:
    """The Django test database, as a DATABASE_URL for a subprocess (as in test_redis)."""
    from django.db import connection

    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    return f"postgres://{s['USER']}:{s['PASSWORD']}@{s['HOST'] or 'localhost'}:{s['PORT'] or 5432}/{s['NAME']}"


# -- Redis ------------------------------------------------------------------------------


class Service:
    """Something a test starts, and closes on the way out: ``start()``, ``stop()``, and
    ``close()`` (stop, then remove its files in ``self.dir``)."""

    dir: str | Path

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RedisServer(Service):
    """A private ``redis-server`` on a loopback port, no persistence, in a temp dir.

    ``stop()`` kills it (SIGKILL: everything it held is lost, as in a crash);
    ``start()`` starts it again on the same port."""

    def __init__(self, port: int | None = None) -> None:
        if REDIS_SERVER is None:
            raise RuntimeError("redis-server is not installed")
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="pbfault-redis-")
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> None:
        assert self.process is None, "already running"
        assert REDIS_SERVER is not None
        log = open(Path(self.dir) / "redis.log", "ab")  # noqa: SIM115 (the child holds it)
        with log:
            self.process = subprocess.Popen(
                [
                    REDIS_SERVER,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    self.dir,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        process = self.process
        _wait_until(self.ping, 10, f"redis-server on port {self.port}", alive=lambda: process.poll() is None)
        self.starts += 1

    def stop(self) -> None:
        """SIGKILL, and wait until it is gone (its port refuses connections)."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.process = None


# -- server processes ------------------------------------------------------------------------


def server_command(
    kind: str, port: int, app: str = "project.asgi:application", extra_args: list[str] | None = None
) -> list[str]:
    """The command line of a server users run: ``scripts/serve`` (uvicorn, production),
    or Daphne as runserver uses it (development). ``PAINTBRUSH_TEST_SERVER`` picks the
    default kind."""
    extra = extra_args or []
    if kind == "daphne":
        return [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), *extra, app]
    if kind == "serve":
        return ["bash", str(ROOT / "scripts" / "serve"), f"127.0.0.1:{port}"]
    if kind == "runserver":  # the development server: Daphne, with the project's settings
        return [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    raise ValueError(f"unknown server {kind!r}")


class ServerProcess:
    """The project's ASGI application under a real server process, sharing the test
    database (``DATABASE_URL``) and, when given, a Redis (``REDIS_URL``, with the layer
    prefix ``PAINTBRUSH_TEST_LAYER_PREFIX``). Its stdout and stderr go to ``log_path``."""

    def __init__(
        self,
        *,
        redis_url: str | None = None,
        prefix: str | None = None,
        kind: str | None = None,
        env: dict[str, str] | None = None,
        db_url: str | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        self.kind = kind or os.environ.get("PAINTBRUSH_TEST_SERVER", "serve")
        self.port = free_port()
        self.redis_url = redis_url
        self.prefix = prefix
        self.db_url = db_url
        self.extra_env = env or {}
        self.extra_args = extra_args or []
        fd, name = tempfile.mkstemp(prefix=f"pbfault-{self.kind}-", suffix=".log")
        os.close(fd)
        self.log_path = Path(name)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def origin(self) -> str:
        return self.base_url

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def url(self, path: str) -> str:
        return self.base_url + path

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def environment(self) -> dict[str, str]:
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings", "PYTHONUNBUFFERED": "1"}
        env["PYTHON"] = sys.executable  # scripts/serve runs this interpreter
        env["DATABASE_URL"] = self.db_url or database_url()
        env.pop("REDIS_URL", None)
        env.pop("PAINTBRUSH_TEST_LAYER_PREFIX", None)
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
            if self.prefix:
                env["PAINTBRUSH_TEST_LAYER_PREFIX"] = self.prefix
        env.update(self.extra_env)
        return env

    def _answers_http(self) -> bool:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            connection.request("GET", "/")
            connection.getresponse().read()
            connection.close()
            return True
        except OSError:
            return False

    def start(self, timeout: float = 30) -> None:
        assert self.process is None, "already running"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                server_command(self.kind, self.port, extra_args=self.extra_args),
                cwd=ROOT,
                env=self.environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        process = self.process
        try:
            _wait_until(self._answers_http, timeout, f"{self.kind} on port {self.port}", lambda: process.poll() is None)
        except RuntimeError as exc:
            self.kill()
            raise RuntimeError(f"{exc}\n{self.log_tail()}") from exc

    def kill(self) -> None:
        """SIGKILL (a crash, mid-stream), and reap it."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.process = None

    def rss(self) -> int:
        """Resident set size in bytes (VmRSS of /proc/PID/status)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        tail = self.log_text().splitlines()[-lines:]
        return f"--- last {len(tail)} lines of {self.log_path} ---\n" + "\n".join(tail)

    def close(self) -> None:
        self.kill()
        if not os.environ.get("PAINTBRUSH_KEEP_LOGS"):
            self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- REST ---------------------------------------------------------------------------------


def http_call(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None, timeout: float = 60
) -> tuple[int, http.client.HTTPMessage, Any]:
    """One request: the status, the response headers and the decoded JSON body (None
    when empty or not JSON)."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)
    try:
        payload = None if body is None else json.dumps(body)
        all_headers = {"Content-Type": "application/json"} if body is not None else {}
        all_headers.update(headers or {})
        connection.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), payload, all_headers)
        response = connection.getresponse()
        raw = response.read()
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = None
        return response.status, response.headers, data
    finally:
        connection.close()


def http_json(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None, timeout: float = 60
) -> tuple[int, Any]:
    """One request; the status and the decoded JSON body (None when empty or not JSON).
    Anonymous: the demo's ``todos`` allows anonymous writes, and DRF's session
    authentication checks CSRF only for signed-in users."""
    status, _, data = http_call(method, url, body, headers, timeout)
    return status, data


def rest_state(server: ServerProcess | str, resource: str) -> dict[Any, dict[str, Any]]:
    """``GET /api/<resource>`` as ``{id: item}``: what every client should converge to."""
    base = server.base_url if isinstance(server, ServerProcess) else server
    status, items = http_json("GET", f"{base}/api/{resource}")
    if status != 200 or not isinstance(items, list):
        raise AssertionError(f"GET /api/{resource}: {status}")
    return {item["id"]: item for item in items}


def state_diff(client: dict[Any, dict[str, Any]], truth: dict[Any, dict[str, Any]], limit: int = 3) -> str:
    """A short account of how a client state differs from the database's."""
    missing = [k for k in truth if k not in client]
    extra = [k for k in client if k not in truth]
    stale = [k for k in truth if k in client and client[k] != truth[k]]
    parts = [f"{len(client)} rows held, {len(truth)} in the database"]
    if missing:
        parts.append(f"{len(missing)} missing (e.g. {[truth[k].get('title', k) for k in missing[:limit]]})")
    if extra:
        parts.append(f"{len(extra)} extra")
    if stale:
        k = stale[0]
        fields = sorted(f for f in truth[k] if client[k].get(f) != truth[k].get(f))
        parts.append(f"{len(stale)} stale (e.g. {truth[k].get('title', k)!r} differs in {fields})")
    return "; ".join(parts)


# -- the client's store: PROTOCOL.md section 2, as paintbrush/static/paintbrush/live.js -------------


def _newer(version: Any, than: int) -> bool:
    return isinstance(version, int) and not isinstance(version, bool) and version > than


@dataclass
class _Row:
    item: dict[str, Any] | None = None  # shown when not None
    set_at: dict[str, int] = field(default_factory=dict)  # field -> version it was last set at
    version: int = 0  # the highest version applied while shown
    tomb: int = 0  # at or below this version nothing about the row applies
    held: list[tuple[dict[str, Any], int]] = field(default_factory=list)  # updates before the row


class Store:
    """One resource's rows, applied by version whatever the order of arrival."""

    def __init__(self) -> None:
        self.rows: dict[Any, _Row] = {}
        self.ready = False  # a complete snapshot was applied

    def _row(self, id: Any) -> _Row:
        row = self.rows.get(id)
        if row is None:
            row = self.rows[id] = _Row()
        return row

    @staticmethod
    def _merge(row: _Row, item: dict[str, Any], fields: dict[str, Any], version: int) -> None:
        for name, value in fields.items():
            if name in {"id", "version"} or not version > row.set_at.get(name, 0):
                continue
            row.set_at[name] = version
            item[name] = value
        if version > row.version:
            row.version = item["version"] = version

    @staticmethod
    def _hide(row: _Row) -> None:
        row.item, row.set_at, row.version = None, {}, 0

    def arrive(self, item: Any, version: Any) -> None:
        if not isinstance(item, dict) or item.get("id") is None:
            return
        row = self._row(item["id"])
        if not _newer(version, row.tomb):
            return
        if row.item is not None:
            self._merge(row, row.item, item, version)
            return
        shown: dict[str, Any] = {"id": item["id"]}
        self._merge(row, shown, item, version)
        for fields, held_version in row.held:
            self._merge(row, shown, fields, held_version)
        row.held = []
        row.item = shown

    def update(self, id: Any, fields: Any, version: Any) -> None:
        if id is None or not isinstance(fields, dict):
            return
        row = self._row(id)
        if not _newer(version, row.tomb):
            return
        if row.item is None:
            row.held.append((fields, version))
            return
        self._merge(row, row.item, fields, version)

    def remove(self, id: Any, version: Any) -> None:
        if id is None:
            return
        row = self._row(id)
        if not _newer(version, row.tomb):
            return
        row.tomb = version
        row.held = [(f, v) for f, v in row.held if v > version]
        if row.item is not None and row.version < version:
            self._hide(row)

    def snapshot(self, items: list[Any]) -> None:
        listed = set()
        for item in items:
            if isinstance(item, dict):
                listed.add(item.get("id"))
                self.arrive(item, item.get("version"))
        for id, row in list(self.rows.items()):
            if row.item is not None and id not in listed:
                row.tomb = max(row.tomb, row.version)
                self._hide(row)
            if row.item is None and not row.tomb and not row.held:
                del self.rows[id]
        self.ready = True

    def state(self) -> dict[Any, dict[str, Any]]:
        return {id: dict(row.item) for id, row in self.rows.items() if row.item is not None}


# -- the WebSocket client --------------------------------------------------------------------


@dataclass
class Figures:
    """What a client saw, for the test's figures line."""

    connects: int = 0
    events: int = 0  # create/update/delete frames received
    snapshots: int = 0  # complete snapshots applied
    snapshot_frames: int = 0
    largest_frame: int = 0  # bytes
    resyncs: int = 0
    closes: list[int | None] = field(default_factory=list)  # close codes received (None: no close frame)
    errors: list[dict[str, Any]] = field(default_factory=list)  # error frames
    connect_failures: int = 0
    last_failure: str = ""  # why the last connection attempt failed


class LiveClient:
    """A WebSocket client of ``/ws`` that behaves like the shipped one, minimally: it
    opens resources with a snapshot, applies events and (split) snapshots by version,
    answers ``resync`` with ``opendoc`` + snapshot, and reconnects after any close,
    re-opening every resource with a snapshot.

    ``pause()`` stops reading (the library's buffer fills, then it stops reading the
    TCP socket: a client that does not read); ``resume()`` reads again.

    ``rcvbuf`` sets the TCP socket's receive buffer (``SO_RCVBUF``, before connecting):
    on loopback the kernel otherwise buffers megabytes for a client that does not read,
    and the server never sees it fall behind. ``compression=None`` declines
    permessage-deflate (on by default, as in browsers): the kernel's buffers then hold
    frames at the size the server's outbox counts them. ``on_event`` is called with
    every event frame (create/update/delete) as it is read."""

    def __init__(
        self,
        url: str | list[str],
        origin: str | None = None,
        *,
        max_size: int | None = 64 * 2**20,
        max_queue: int = 16,
        reconnect: bool = True,
        reconnect_delay: float = 0.2,
        name: str = "client",
        rcvbuf: int | None = None,
        compression: str | None = "deflate",
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        # Several URLs: servers behind one address, as a load balancer would offer them.
        # A connection that cannot be opened moves on to the next one.
        self.urls = [url] if isinstance(url, str) else list(url)
        self._url_index = 0
        self.fixed_origin = origin
        self.max_size = max_size
        self.max_queue = max_queue
        self.reconnect = reconnect
        self.reconnect_delay = reconnect_delay
        self.name = name
        self.rcvbuf = rcvbuf
        self.compression = compression
        #: SO_RCVBUF as the kernel set it (Linux doubles the request), once connected.
        self.rcvbuf_granted: int | None = None
        self.on_event = on_event
        self.stores: dict[str, Store] = {}
        self.figures = Figures()
        self.frames: list[dict[str, Any]] = []  # non-event frames: opened, closed, resync, error, ...
        self.connected = False
        self._ws: ClientConnection | None = None
        self._partial: dict[str, list[Any]] = {}
        self._changed = asyncio.Event()
        self._reading = asyncio.Event()
        self._reading.set()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._opened_once = asyncio.Event()

    @property
    def url(self) -> str:
        return self.urls[self._url_index % len(self.urls)]

    @property
    def origin(self) -> str:
        parts = urllib.parse.urlsplit(self.url)
        return self.fixed_origin or f"http://{parts.hostname}:{parts.port}"

    # -- life cycle ----------------------------------------------------------------------

    async def start(self, timeout: float = 10) -> None:
        """Connect (and keep reconnecting until ``stop()``)."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"LiveClient {self.name}")
        if not await self.wait_for(lambda: self.connected, timeout):
            raise AssertionError(f"{self.name}: could not connect to {self.url}: {self.figures}")

    async def stop(self) -> None:
        self._stopping = True
        self._reading.set()
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 5)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._task = None

    def pause(self) -> None:
        self._reading.clear()

    def resume(self) -> None:
        self._reading.set()

    async def _socket(self) -> socket.socket | None:
        """A TCP socket connected to the server with ``rcvbuf`` set before the
        handshake (the window is negotiated then), or None to let websockets open one."""
        if self.rcvbuf is None:
            return None
        parts = urllib.parse.urlsplit(self.url)
        loop = asyncio.get_running_loop()
        family, kind, proto, _, address = (
            await loop.getaddrinfo(parts.hostname, parts.port or 80, type=socket.SOCK_STREAM)
        )[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
            sock.setblocking(False)
            await asyncio.wait_for(loop.sock_connect(sock, address), 10)
        except BaseException:
            sock.close()
            raise
        self.rcvbuf_granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        return sock

    async def _run(self) -> None:
        while not self._stopping:
            try:
                sock = await self._socket()
                async with connect(
                    self.url,
                    sock=sock,
                    compression=self.compression,
                    origin=Origin(self.origin),
                    max_size=self.max_size,
                    max_queue=self.max_queue,
                    open_timeout=10,
                    close_timeout=5,
                    ping_interval=None,  # the server pings; a paused client must not time out itself
                ) as ws:
                    self._ws = ws
                    self.figures.connects += 1
                    self._partial.clear()
                    for resource in self.stores:
                        await self._send({"action": "opendoc", "resource": resource, "snapshot": True})
                    self.connected = True
                    self._notify()
                    while True:
                        await self._reading.wait()
                        self._handle(await ws.recv())
            except ConnectionClosed as exc:
                self.figures.closes.append(exc.rcvd.code if exc.rcvd is not None else None)
            except (OSError, InvalidHandshake, TimeoutError) as exc:
                self.figures.connect_failures += 1
                self.figures.last_failure = f"{self.url}: {exc!r}"
                self._url_index += 1
            finally:
                self._ws = None
                self.connected = False
                self._notify()
            if self._stopping or not self.reconnect:
                return
            await asyncio.sleep(self.reconnect_delay)  # a client's reconnect backoff, not a synchronisation

    # -- requests ------------------------------------------------------------------------------

    async def _send(self, message: dict[str, Any]) -> None:
        await self.send_text(json.dumps(message))

    async def _answer(self, message: dict[str, Any]) -> None:
        """Answer the server from a task of its own: if the socket closed meanwhile, the
        reconnect opens every resource again with a snapshot anyway."""
        with contextlib.suppress(ConnectionError, ConnectionClosed):
            await self._send(message)

    async def send_text(self, text: str | bytes) -> None:
        ws = self._ws
        if ws is None:
            raise ConnectionError(f"{self.name}: not connected")
        await ws.send(text)

    async def open(self, resource: str, timeout: float = 30) -> None:
        """Subscribe with a snapshot; return once a complete snapshot is applied."""
        store = self.stores.setdefault(resource, Store())
        await self._send({"action": "opendoc", "resource": resource, "snapshot": True})
        if not await self.wait_for(lambda: store.ready or self.finished, timeout) or not store.ready:
            raise AssertionError(f"{self.name}: no snapshot of {resource!r} within {timeout} s: {self.figures}")

    @property
    def finished(self) -> bool:
        """Disconnected for good (``reconnect=False``, or stopped)."""
        return self._task is not None and self._task.done()

    # -- incoming frames -------------------------------------------------------------------

    def _handle(self, raw: str | bytes) -> None:
        size = len(raw)
        self.figures.largest_frame = max(self.figures.largest_frame, size)
        message = json.loads(raw)
        if not isinstance(message, dict):
            return
        resource = message.get("resource")
        action = message.get("action")
        store = self.stores.get(resource) if isinstance(resource, str) else None
        if action in {"create", "update", "delete"}:
            self.figures.events += 1
            if self.on_event is not None:
                self.on_event(message)
            if store is None:
                return
            if action == "create":
                item = message.get("item")
                store.arrive(item, message.get("version", item.get("version") if isinstance(item, dict) else None))
            elif action == "update":
                store.update(message.get("id"), message.get("fields"), message.get("version"))
            else:
                store.remove(message.get("id"), message.get("version"))
        elif action == "snapshot":
            self.figures.snapshot_frames += 1
            assert isinstance(resource, str)
            items = message.get("items")
            self._partial.setdefault(resource, []).extend(items if isinstance(items, list) else [])
            if message.get("more") is not True:
                whole = self._partial.pop(resource)
                if store is not None:
                    store.snapshot(whole)
                    self.figures.snapshots += 1
        else:
            self.frames.append(message)
            if message.get("type") == "error":
                self.figures.errors.append(message)
            elif message.get("type") == "resync" and isinstance(resource, str) and store is not None:
                self.figures.resyncs += 1
                asyncio.get_running_loop().create_task(
                    self._answer({"action": "opendoc", "resource": resource, "snapshot": True})
                )
        self._notify()

    def _notify(self) -> None:
        self._changed.set()

    # -- observing ------------------------------------------------------------------------

    def state(self, resource: str) -> dict[Any, dict[str, Any]]:
        store = self.stores.get(resource)
        return store.state() if store is not None else {}

    async def wait_for(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``condition()`` holds, re-checked after every frame and connection
        change; False after ``timeout`` seconds."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not condition():
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return False
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return True

    async def wait_frame(self, match: Callable[[dict[str, Any]], bool], timeout: float, start: int = 0) -> Any:
        """The first non-event frame from index ``start`` on that ``match``es, or None."""
        found: list[dict[str, Any]] = []

        def seen() -> bool:
            found[:] = [f for f in self.frames[start:] if match(f)][:1]
            return bool(found)

        await self.wait_for(seen, timeout)
        return found[0] if found else None


def _equals(client: LiveClient, resource: str, truth: dict[Any, dict[str, Any]]) -> Callable[[], bool]:
    return lambda: client.state(resource) == truth


async def wait_converged(
    clients: list[LiveClient], resource: str, truth: dict[Any, dict[str, Any]], timeout: float
) -> tuple[bool, float]:
    """Wait until every client's state of ``resource`` equals ``truth``; (ok, seconds)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    deadline = start + timeout
    ok = True
    for client in clients:
        remaining = max(0.0, deadline - loop.time())
        ok = await client.wait_for(_equals(client, resource, truth), remaining) and ok
    return ok, loop.time() - start


@contextlib.contextmanager
def started(*things: RedisServer | ServerProcess) -> Iterator[None]:
    """Start each, and close each on the way out (in reverse order)."""
    with contextlib.ExitStack() as stack:
        for thing in things:
            stack.enter_context(thing)
        yield
