"""
Fan-out benchmark: one event to many sockets, Paintbrush beside its peers, in one run.

    pip install -r bench/requirements.txt        # once, in the benchmark's venv
    python bench/fanout.py                       # S=1000 sockets, W=200 writes per phase
    python bench/fanout.py --quick               # a smoke run (S=100, W=20)
    python bench/fanout.py --processes 2 --layer redis redis-pubsub \\
        --systems floor paintbrush-uvicorn channels-relay      # scale-out (starts redis-server)
    python bench/fanout.py --phases overload --systems paintbrush-uvicorn   # W=2000 writes

Each system is started alone, as a subprocess on a free port (SQLite on tmpfs where it
has a database, the in-memory channel layer unless --layer says otherwise):

- ``floor``: a pure asyncio ``websockets`` server; one pre-encoded frame per write,
  handed to every socket with ``websockets.broadcast`` (bench/peers/floor.py);
- ``paintbrush-daphne``, ``paintbrush-uvicorn`` (``scripts/serve``, as in production),
  ``paintbrush-granian``: the demo project (``POST /api/todos``, resource ``todos``);
- ``channels-relay`` (and ``channels-relay-uvicorn``): stock Channels, each socket its
  own channel in one group, ``group_send`` of a pre-encoded text from ``on_commit``;
- ``dcrf`` (and ``dcrf-uvicorn``): djangochannelsrestframework's model observer.

Then ``--client-procs`` processes (not the server's) connect S sockets between them and
subscribe, and this process writes over REST in phases of W writes each:

- ``one``: one writer, each POST sent when the previous one was answered;
- ``concurrent``: C writers (``--writers``) doing the same side by side;
- ``paced``: open loop, one POST every 1/``--rate`` seconds whatever the answers;
- ``overload`` (only when asked): ``one`` with ``--overload-writes`` writes.

What a cell means:

- deliveries/s: events received by all sockets, over the time from the first write's
  start to the last receipt;
- latency: from the start of the write's request to a socket's receipt of its event
  (every delivery counts; the title of each write carries its number);
- lost: S x successful writes - deliveries received, once no delivery came for
  ``--drain`` seconds (a Paintbrush ``resync`` is counted on its own row);
- server CPU per delivery: user + system CPU of the server's process tree over the
  phase (``/proc``), divided by the deliveries;
- writes/s and POST latency: as the writers saw them;
- RSS: the server's process tree with S idle subscribed sockets, and the growth per
  socket over the server warmed up without sockets; the peak during each phase.

Subscriber clients are a minimal WebSocket protocol on asyncio (uvloop when installed):
one clock reading per read, frames scanned for the write number, nothing decoded. The
client rows (CPU per delivery, busiest client process) show whether they kept up: the
floor must reach its usual figure. Paintbrush allows 50 sockets per client address, so
the clients spread their sockets over source addresses 127.0.x.y.

Prints a Markdown table (a column per system; each cell also as a ratio to the floor, F,
and to djangochannelsrestframework, D: value / reference) and writes JSON (--json).
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import datetime
import json
import math
import multiprocessing
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
OPENDOC = json.dumps({"action": "opendoc", "resource": "todos"}).encode()
DCRF_SUBSCRIBE = json.dumps({"action": "subscribe_to_todos", "request_id": 1}).encode()
#: Sockets per client source address: Paintbrush closes a client's 51st (4029).
SOCKETS_PER_ADDRESS = 40
PHASES = ("one", "concurrent", "paced", "overload")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# -- systems ------------------------------------------------------------------------------


@dataclass(frozen=True)
class System:
    name: str
    app: str  # "paintbrush", "relay", "dcrf" or "floor"
    server: str  # "daphne", "uvicorn", "granian" or "asyncio"
    subscribe: bytes = OPENDOC  # the text a socket sends to subscribe
    ready: bytes = b'"opened"'  # found in the answer that confirms it
    path: str = "/ws"


SYSTEMS = {
    s.name: s
    for s in (
        System("floor", "floor", "asyncio"),
        System("paintbrush-daphne", "paintbrush", "daphne"),
        System("paintbrush-uvicorn", "paintbrush", "uvicorn"),
        System("paintbrush-granian", "paintbrush", "granian"),
        System("channels-relay", "relay", "daphne"),
        System("channels-relay-uvicorn", "relay", "uvicorn"),
        System("dcrf", "dcrf", "daphne", DCRF_SUBSCRIBE, b'"response_status"'),
        System("dcrf-uvicorn", "dcrf", "uvicorn", DCRF_SUBSCRIBE, b'"response_status"'),
    )
}
DEFAULT_SYSTEMS = ["floor", "paintbrush-daphne", "paintbrush-uvicorn", "paintbrush-granian", "channels-relay", "dcrf"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


# -- process trees, from /proc ------------------------------------------------------------


def _stat_fields(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as file:
        text = file.read()
    return text[text.rindex(")") + 2 :].split()  # fields from the 3rd on (state, ppid, ...)


def process_tree(roots: list[int]) -> list[int]:
    """``roots`` and all their living descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                children.setdefault(int(_stat_fields(int(entry))[1]), []).append(int(entry))
    found, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        if os.path.exists(f"/proc/{pid}"):
            found.append(pid)
            todo.extend(children.get(pid, ()))
    return found


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = _stat_fields(pid)
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError), open(f"/proc/{pid}/statm") as file:
            total += int(file.read().split()[1]) * PAGE
    return total


def socket_count(pid: int) -> int:
    count = 0
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
    return count


# -- servers --------------------------------------------------------------------------------


@dataclass
class Server:
    procs: list[subprocess.Popen[bytes]]
    http_port: int
    ws_port: int
    log: Path

    def pids(self) -> list[int]:
        return process_tree([p.pid for p in self.procs])

    def workers(self) -> list[int]:
        """The processes that serve sockets: leaves of the tree (uvicorn's and Granian's
        workers, not their supervisor)."""
        pids = self.pids()
        parents = set()
        for pid in pids:
            with contextlib.suppress(OSError, ValueError, IndexError):
                parents.add(int(_stat_fields(pid)[1]))
        return [pid for pid in pids if pid not in parents] or pids

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for p in self.procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait()

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
        return ""


def _uvicorn_args(app: str, port: int, workers: int) -> list[str]:
    """uvicorn as scripts/serve runs it (for the peers under uvicorn)."""
    return [
        *("-m", "uvicorn", app, "--host", HOST, "--port", str(port), "--workers", str(workers)),
        *("--loop", "uvloop", "--http", "httptools", "--ws", "websockets-sansio", "--lifespan", "off"),
        "--no-access-log",
    ]


def start_server(
    system: System, directory: Path, processes: int, layer: str, redis_url: str | None, *, floor_uvloop: bool = False
) -> Server:
    python = sys.executable
    db = directory / "bench.sqlite3"
    log = directory / "server.log"
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DJANGO_SETTINGS_MODULE", "WEB_CONCURRENCY"}}
    env |= {"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "bench", "PYTHONUNBUFFERED": "1", "BENCH_LAYER": layer}
    if redis_url:
        env["REDIS_URL"] = redis_url
    http_port = ws_port = free_port()
    commands: list[list[str]] = []
    fds: list[socket.socket] = []
    if system.app == "floor":
        ws_port = free_port()
        command = [python, str(ROOT / "bench/peers/floor.py"), "--http-port", str(http_port), "--ws-port", str(ws_port)]
        commands.append([*command, "--uvloop"] if floor_uvloop else command)
    else:
        if system.app == "paintbrush":
            app = "project.asgi:application"
            env["DATABASE_URL"] = f"sqlite:///{db}"
            if layer == "redis-pubsub":
                env["DJANGO_SETTINGS_MODULE"] = "bench.peers.paintbrush_settings"
            migrate = [python, "manage.py", "migrate", "-v0"]
        else:
            app = f"bench.peers.{system.app}.asgi:application"
            env["DJANGO_SETTINGS_MODULE"] = f"bench.peers.{system.app}.settings"
            env["BENCH_DB"] = str(db)
            migrate = [python, "-m", "django", "migrate", "--run-syncdb", "-v0"]
        subprocess.run(migrate, cwd=ROOT, env=env, check=True)
        if system.server == "daphne":
            if processes == 1:
                commands.append([python, "-m", "daphne", "-b", HOST, "-p", str(http_port), app])
            else:
                # Daphne has no workers: P processes, each on its own SO_REUSEPORT socket
                # of the same port (the kernel spreads connections evenly over them).
                for _ in range(processes):
                    listener = socket.socket()
                    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                    listener.bind((HOST, http_port))
                    listener.listen(1024)
                    fds.append(listener)
                    commands.append([python, "-m", "daphne", "--fd", str(listener.fileno()), app])
        elif system.server == "uvicorn" and system.app == "paintbrush":
            env |= {"PYTHON": python, "WEB_CONCURRENCY": str(processes)}
            commands.append(["bash", "scripts/serve", f"{HOST}:{http_port}"])
        elif system.server == "uvicorn":
            commands.append([python, *_uvicorn_args(app, http_port, processes)])
        elif system.server == "granian":
            options = ["--interface", "asginl", "--host", HOST, "--port", str(http_port), "--workers", str(processes)]
            commands.append([python, "-m", "granian", *options, "--loop", "uvloop", "--log-level", "warning", app])
        else:
            raise ValueError(system.server)
    procs = []
    with log.open("ab") as out:
        for command in commands:
            pass_fds = tuple(s.fileno() for s in fds if str(s.fileno()) in command)
            procs.append(
                subprocess.Popen(
                    command, cwd=ROOT, env=env, stdout=out, stderr=out, start_new_session=True, pass_fds=pass_fds
                )
            )
    for listener in fds:
        listener.close()
    return Server(procs, http_port, ws_port, log)


def _has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    if not _has_uvloop():
        return None
    import uvloop

    return uvloop.new_event_loop


def start_redis(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    server = shutil.which("redis-server")
    if server is None:
        raise SystemExit("--layer redis needs redis-server on PATH (apt-get install redis-server)")
    port = free_port()
    command = [server, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no", "--dir", str(directory)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    for _ in range(100):
        with contextlib.suppress(OSError):
            socket.create_connection((HOST, port), timeout=0.2).close()
            return proc, f"redis://{HOST}:{port}/0"
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


# -- REST writers -------------------------------------------------------------------------


class HttpClient:
    """HTTP/1.1 with keep-alive, enough for POST and its answer (sized or chunked)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> int:
        head = b"POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
        request = head % (path.encode(), len(body)) + body
        for attempt in range(2):
            reused = self._writer is not None
            if self._reader is None or self._writer is None:
                self._reader, self._writer = await asyncio.open_connection(HOST, self.port)
            try:
                self._writer.write(request)
                return await self._response(self._reader)
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if not reused or attempt:  # a kept-alive connection the server had closed: once more
                    raise
        raise AssertionError("unreachable")

    async def _response(self, reader: asyncio.StreamReader) -> int:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip().lower()
        if headers.get(b"transfer-encoding") == b"chunked":
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    break
                await reader.readexactly(size + 2)
        elif b"content-length" in headers:
            await reader.readexactly(int(headers[b"content-length"]))
        else:
            await reader.read()
            self.close()
        if headers.get(b"connection") == b"close":
            self.close()
        return status

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


@dataclass
class WriteLog:
    starts: dict[int, float] = field(default_factory=dict)  # key -> request start (monotonic)
    ok: set[int] = field(default_factory=set)
    post_seconds: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    done: float = 0.0  # the last answer


async def _write(client: HttpClient, key: int, log: WriteLog) -> None:
    body = json.dumps({"title": f"~k{key}~"}).encode()
    start = time.monotonic()
    log.starts[key] = start
    try:
        status = await client.post("/api/todos", body)
    except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
        status, reason = 0, repr(exc)
    else:
        reason = f"HTTP {status}"
    now = time.monotonic()
    log.done = max(log.done, now)
    if status == 201:
        log.ok.add(key)
        log.post_seconds.append(now - start)
    else:
        log.errors += 1
        log.first_error = log.first_error or reason


async def run_writes(kind: str, port: int, keys: list[int], writers: int, rate: float) -> WriteLog:
    log = WriteLog()
    if kind in {"one", "overload", "concurrent"}:
        pending = iter(keys)
        clients = [HttpClient(port) for _ in range(writers if kind == "concurrent" else 1)]

        async def writer(client: HttpClient) -> None:
            for key in pending:
                await _write(client, key, log)

        await asyncio.gather(*(writer(c) for c in clients))
    else:  # paced, open loop: a write leaves on time whatever the earlier ones are doing
        idle: list[HttpClient] = []

        async def paced(key: int) -> None:
            client = idle.pop() if idle else HttpClient(port)
            await _write(client, key, log)
            idle.append(client)

        tasks = []
        begin = time.monotonic() + 0.05
        for i, key in enumerate(keys):
            await asyncio.sleep(max(0.0, begin + i / rate - time.monotonic()))
            tasks.append(asyncio.create_task(paced(key)))
        await asyncio.gather(*tasks)
        clients = idle
    for client in clients:
        client.close()
    return log


# -- subscriber clients (in their own processes) ------------------------------------------


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked frame, as a client must send it."""
    mask = os.urandom(4)
    size = len(payload)
    if size < 126:
        head = bytes((0x80 | opcode, 0x80 | size))
    elif size < 65536:
        head = bytes((0x80 | opcode, 0xFE)) + size.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0xFF)) + size.to_bytes(8, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class Recorder:
    """What one client process received: (write number, receipt time) per delivery."""

    def __init__(self) -> None:
        self.keys = array.array("q")
        self.times = array.array("d")
        self.resyncs = 0
        self.others = 0
        self.closed = 0
        self.close_codes: dict[int, int] = {}

    def take(self) -> dict[str, Any]:
        taken = {
            "keys": self.keys.tobytes(),
            "times": self.times.tobytes(),
            "resyncs": self.resyncs,
            "others": self.others,
        }
        self.keys, self.times = array.array("q"), array.array("d")
        self.resyncs = self.others = 0
        return taken


class Subscriber(asyncio.Protocol):
    """One WebSocket: handshake, subscribe, then record every event it is sent."""

    def __init__(self, recorder: Recorder, request: bytes, subscribe: bytes, ready: bytes) -> None:
        self.recorder = recorder
        self.request = request
        self.subscribe = client_frame(1, subscribe)
        self.ready_marker = ready
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.upgraded = False
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.ready.done():
            self.recorder.closed += 1
        else:
            self.ready.set_exception(ConnectionError(f"closed before subscribing ({exc!r})"))

    def _fail(self, reason: str) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(reason))
        assert self.transport is not None
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()  # one reading per read: every frame in it arrived then
        buffer = self.buffer
        buffer += data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                self._fail(bytes(buffer[: buffer.find(b"\r\n")]).decode(errors="replace"))
                return
            del buffer[: end + 4]
            self.upgraded = True
            assert self.transport is not None
            self.transport.write(self.subscribe)
        recorder = self.recorder
        pos, size = 0, len(buffer)
        while size - pos >= 2:
            length = buffer[pos + 1] & 0x7F
            start = pos + 2
            if length == 126:
                if size - pos < 4:
                    break
                length, start = int.from_bytes(buffer[pos + 2 : pos + 4], "big"), pos + 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, start = int.from_bytes(buffer[pos + 2 : pos + 10], "big"), pos + 10
            stop = start + length
            if stop > size:
                break
            opcode = buffer[pos] & 0x0F
            pos = stop
            if opcode in {0, 1}:
                mark = buffer.find(b"~k", start, stop)
                if mark >= 0:
                    recorder.keys.append(int(buffer[mark + 2 : buffer.find(b"~", mark + 2, stop)]))
                    recorder.times.append(now)
                else:
                    self._other(bytes(buffer[start:stop]))
            elif opcode == 9:  # ping
                assert self.transport is not None
                self.transport.write(client_frame(10, bytes(buffer[start:stop])))
            elif opcode == 8:  # close
                code = int.from_bytes(buffer[start : start + 2], "big") if length >= 2 else 1005
                recorder.close_codes[code] = recorder.close_codes.get(code, 0) + 1
                assert self.transport is not None
                self.transport.write(client_frame(8, bytes(buffer[start : start + 2])))
                self._fail(f"closed by the server ({code})")
                return
        if pos:
            del buffer[:pos]

    def _other(self, text: bytes) -> None:
        if not self.ready.done():
            if self.ready_marker in text:
                self.ready.set_result(None)
            return
        self.recorder.others += 1
        if b'"resync"' in text:
            self.recorder.resyncs += 1

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(client_frame(8, (1000).to_bytes(2, "big")))
            self.transport.close()


def subscriber_process(
    conn: Connection, *, port: int, path: str, first: int, count: int, subscribe: bytes, ready: bytes
) -> None:
    """A client process: ``count`` sockets (numbered from ``first``), then commands."""
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(
            _subscribe_and_serve(conn, port=port, path=path, first=first, count=count, subscribe=subscribe, ready=ready)
        )


async def _subscribe_and_serve(
    conn: Connection, *, port: int, path: str, first: int, count: int, subscribe: bytes, ready: bytes
) -> None:
    loop = asyncio.get_running_loop()
    recorder = Recorder()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        "Origin: http://localhost\r\n\r\n"
    ).encode()
    gate = asyncio.Semaphore(16)  # connections in progress at once (Daphne's backlog is 50)
    errors: list[str] = []

    async def connect(index: int) -> Subscriber | None:
        slot = index // SOCKETS_PER_ADDRESS
        local = f"127.0.{slot // 250}.{2 + slot % 250}"
        for attempt in range(5):
            async with gate:
                transport: asyncio.BaseTransport | None = None
                try:
                    transport, protocol = await loop.create_connection(
                        lambda: Subscriber(recorder, request, subscribe, ready), HOST, port, local_addr=(local, 0)
                    )
                    await asyncio.wait_for(protocol.ready, 30)
                    return protocol
                except (OSError, TimeoutError) as exc:
                    errors.append(repr(exc))
                    if transport is not None:
                        transport.close()
            await asyncio.sleep(0.2 * (attempt + 1))
        return None

    connected = await asyncio.gather(*(connect(i) for i in range(first, first + count)))
    sockets = [s for s in connected if s is not None]
    finished = asyncio.Event()

    def command() -> None:
        message = conn.recv()
        if message == "count":
            conn.send((len(recorder.keys), recorder.closed))
        elif message == "collect":
            conn.send(recorder.take() | {"closed": recorder.closed, "close_codes": recorder.close_codes})
        elif message == "cpu":
            times = os.times()
            conn.send(times.user + times.system)
        elif message == "close":
            for s in sockets:
                s.close()
            finished.set()

    loop.add_reader(conn.fileno(), command)
    # uvloop (libuv) makes a polled descriptor non-blocking, and a large answer would
    # then be cut short: this process may wait while sending.
    os.set_blocking(conn.fileno(), True)
    conn.send({"subscribed": len(sockets), "errors": errors[:3], "retries": len(errors)})
    await finished.wait()
    await asyncio.sleep(0.2)
    conn.send("closed")


class Clients:
    def __init__(self, system: System, port: int, sockets: int, processes: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.conns: list[Connection] = []
        self.procs: list[Any] = []
        share, extra = divmod(sockets, processes)
        first = 0
        for k in range(processes):
            count = share + (k < extra)
            parent, child = context.Pipe()
            kwargs = {"port": port, "path": system.path, "first": first, "count": count}
            kwargs |= {"subscribe": system.subscribe, "ready": system.ready}
            proc = context.Process(target=subscriber_process, args=(child,), kwargs=kwargs, daemon=True)
            proc.start()
            self.conns.append(parent)
            self.procs.append(proc)
            first += count
        self.subscribed = 0
        self.errors: list[str] = []
        for conn in self.conns:
            if not conn.poll(300):
                raise RuntimeError("clients did not connect within 300 s")
            answer = conn.recv()
            self.subscribed += answer["subscribed"]
            self.errors += answer["errors"]

    def ask(self, message: str) -> list[Any]:
        for conn in self.conns:
            conn.send(message)
        return [conn.recv() for conn in self.conns]

    def close(self) -> None:
        with contextlib.suppress(OSError, EOFError):
            self.ask("close")
        for proc in self.procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()


# -- one phase ----------------------------------------------------------------------------


def quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def run_phase(
    kind: str, number: int, *, server: Server, clients: Clients, writes: int, args: argparse.Namespace, redis: list[int]
) -> dict[str, Any]:
    keys = [number * 1_000_000 + i for i in range(writes)]
    pids = server.pids()
    cpu0, redis0, client0 = cpu_seconds(pids), cpu_seconds(redis), clients.ask("cpu")
    peak = rss_bytes(pids)

    async def sample() -> None:
        nonlocal peak
        while True:
            await asyncio.sleep(0.25)
            peak = max(peak, rss_bytes(server.pids()))

    sampler = asyncio.create_task(sample())
    begin = time.monotonic()
    log = await run_writes(kind, server.http_port, keys, args.writers, args.rate)
    expected = clients.subscribed * len(log.ok)
    received, last_change = -1, time.monotonic()
    while time.monotonic() - begin < args.drain_max:
        total = sum(c[0] for c in clients.ask("count"))
        if total >= expected:
            break
        if total != received:
            received, last_change = total, time.monotonic()
        elif time.monotonic() - last_change > args.drain:
            break
        await asyncio.sleep(0.05)
    sampler.cancel()
    wall = time.monotonic() - begin
    cpu = cpu_seconds(server.pids()) - cpu0
    redis_cpu = cpu_seconds(redis) - redis0
    client_cpu = [c1 - c0 for c1, c0 in zip(clients.ask("cpu"), client0, strict=True)]
    collected = clients.ask("collect")

    latencies: list[float] = []
    last = begin
    stale = resyncs = 0
    for part in collected:
        got_keys, got_times = array.array("q"), array.array("d")
        got_keys.frombytes(part["keys"])
        got_times.frombytes(part["times"])
        for key, at in zip(got_keys, got_times, strict=True):
            start = log.starts.get(key)
            if start is None:
                stale += 1
                continue
            latencies.append(at - start)
            last = max(last, at)
        resyncs += part["resyncs"]
    latencies.sort()
    deliveries = len(latencies)
    first = min(log.starts.values())
    posts = sorted(log.post_seconds)
    return {
        "writes": writes,
        "writes_ok": len(log.ok),
        "write_errors": log.errors,
        "first_write_error": log.first_error,
        "expected": expected,
        "deliveries": deliveries,
        "lost": expected - deliveries,
        "resyncs": resyncs,
        "stale": stale,
        "sockets_closed": sum(p["closed"] for p in collected),
        "close_codes": [p["close_codes"] for p in collected],
        "deliveries_per_s": deliveries / (last - first) if deliveries else 0.0,
        "latency_p50_ms": quantile(latencies, 0.50) * 1000,
        "latency_p99_ms": quantile(latencies, 0.99) * 1000,
        "latency_max_ms": latencies[-1] * 1000 if latencies else float("nan"),
        "server_cpu_s": cpu,
        "server_cpu_us_per_delivery": cpu / deliveries * 1e6 if deliveries else float("nan"),
        "redis_cpu_us_per_delivery": redis_cpu / deliveries * 1e6 if deliveries and redis else None,
        "writes_per_s": len(log.ok) / (log.done - first) if log.ok else 0.0,
        "post_p50_ms": quantile(posts, 0.50) * 1000,
        "post_p99_ms": quantile(posts, 0.99) * 1000,
        "rss_peak_mb": peak / 2**20,
        "rss_end_mb": rss_bytes(server.pids()) / 2**20,
        "client_cpu_us_per_delivery": sum(client_cpu) / deliveries * 1e6 if deliveries else float("nan"),
        "busiest_client_cpu_share": max(client_cpu) / wall,
        "wall_s": wall,
    }


# -- one system ---------------------------------------------------------------------------


async def warm_up(server: Server, writes: int = 20) -> None:
    client = HttpClient(server.http_port)
    deadline = time.monotonic() + 60
    while True:
        if not server.alive():
            raise RuntimeError(f"the server exited:\n{server.log_tail()}")
        try:
            if await client.post("/api/todos", b'{"title": "warm-up"}') == 201:
                break
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            client.close()
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server did not answer 201 within 60 s:\n{server.log_tail()}")
        await asyncio.sleep(0.2)
    for _ in range(writes):
        await client.post("/api/todos", b'{"title": "warm-up"}')
    client.close()


async def bench_system(system: System, layer: str, args: argparse.Namespace) -> dict[str, Any]:
    processes = 1 if system.app == "floor" else args.processes
    result: dict[str, Any] = {"system": system.name, "server": system.server, "processes": processes}
    result["layer"] = "none" if system.app == "floor" else layer
    tmp = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
    with tempfile.TemporaryDirectory(dir=tmp, prefix="fanout-") as name:
        directory = Path(name)
        redis_proc, redis_url = (None, None)
        if layer != "inmemory" and system.app != "floor":
            redis_proc, redis_url = start_redis(directory)
        redis = [redis_proc.pid] if redis_proc else []
        layer = layer if system.app != "floor" else "inmemory"
        server: Server | None = None
        clients: Clients | None = None
        try:
            server = start_server(system, directory, processes, layer, redis_url, floor_uvloop=args.floor_uvloop)
            await warm_up(server)
            await asyncio.sleep(0.5)
            base = rss_bytes(server.pids())
            base_sockets = {pid: socket_count(pid) for pid in server.workers()}
            started = time.monotonic()
            clients = Clients(system, server.ws_port, args.sockets, args.client_procs)
            result["connect_s"] = time.monotonic() - started
            result["subscribed"] = clients.subscribed
            result["connect_errors"] = clients.errors
            if clients.subscribed < args.sockets:
                print(f"  {system.name}: {clients.subscribed} of {args.sockets} sockets subscribed", file=sys.stderr)
            await asyncio.sleep(1.0)
            idle = rss_bytes(server.pids())
            result["rss_base_mb"] = base / 2**20
            result["rss_idle_mb"] = idle / 2**20
            result["rss_per_socket_kb"] = (idle - base) / max(1, clients.subscribed) / 1024
            spread = [socket_count(pid) - n for pid, n in base_sockets.items()]
            result["sockets_per_process"] = [n for n in spread if n > 0] or spread
            result["phases"] = {}
            for number, kind in enumerate(args.phases, 1):
                writes = args.overload_writes if kind == "overload" else args.writes
                phase = await run_phase(
                    kind, number, server=server, clients=clients, writes=writes, args=args, redis=redis
                )
                result["phases"][kind] = phase
                print(
                    f"  {system.name:<24} {kind:<10} {phase['deliveries_per_s']:9,.0f} deliveries/s"
                    f"  p50 {phase['latency_p50_ms']:7.1f} ms  p99 {phase['latency_p99_ms']:7.1f} ms"
                    f"  lost {phase['lost']:6d}  cpu {phase['server_cpu_us_per_delivery']:6.1f} us"
                    f"  post p50 {phase['post_p50_ms']:6.1f} ms  ({phase['wall_s']:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
                if phase["write_errors"]:
                    print(f"    write errors: {phase['write_errors']} ({phase['first_write_error']})", file=sys.stderr)
        except Exception as exc:
            result["error"] = f"{exc!r}"
            print(f"  {system.name}: FAILED {exc}", file=sys.stderr, flush=True)
        finally:
            if clients is not None:
                clients.close()
            if server is not None:
                server.stop()
            if redis_proc is not None:
                os.killpg(redis_proc.pid, signal.SIGTERM)
                redis_proc.wait()
    return result


# -- report -------------------------------------------------------------------------------

ROWS: list[tuple[str, str, str]] = [  # (metric key, label, format)
    ("deliveries_per_s", "deliveries/s", "{:,.0f}"),
    ("latency_p50_ms", "latency p50 (ms)", "{:,.1f}"),
    ("latency_p99_ms", "latency p99 (ms)", "{:,.1f}"),
    ("latency_max_ms", "latency max (ms)", "{:,.0f}"),
    ("lost", "lost deliveries", "{:,d}"),
    ("resyncs", "resyncs received", "{:,d}"),
    ("server_cpu_us_per_delivery", "server CPU per delivery (µs)", "{:,.1f}"),
    ("redis_cpu_us_per_delivery", "redis CPU per delivery (µs)", "{:,.1f}"),
    ("writes_per_s", "REST writes/s", "{:,.1f}"),
    ("post_p50_ms", "POST p50 (ms)", "{:,.1f}"),
    ("post_p99_ms", "POST p99 (ms)", "{:,.1f}"),
    ("rss_peak_mb", "server RSS peak (MB)", "{:,.0f}"),
    ("client_cpu_us_per_delivery", "client CPU per delivery (µs)", "{:,.1f}"),
    ("busiest_client_cpu_share", "busiest client process, CPU share", "{:.0%}"),
]
NO_RATIO = {"lost", "resyncs", "busiest_client_cpu_share", "client_cpu_us_per_delivery"}
PHASE_LABELS = {"one": "1 writer", "concurrent": "{C} writers", "paced": "paced {R}/s", "overload": "overload"}


def _cell(value: Any, fmt: str, refs: list[tuple[str, Any]]) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    text = fmt.format(value)
    ratios = [f"{tag} {_ratio(value / ref)}" for tag, ref in refs if isinstance(ref, int | float) and ref]
    return f"{text} ({', '.join(ratios)})" if ratios else text


def _ratio(ratio: float) -> str:
    """``x2.5`` or ``/4``: easier to read than 0.25 or 2.4e-04."""
    if ratio <= 0:
        return "x0"
    sign, ratio = ("x", ratio) if ratio >= 1 else ("/", 1 / ratio)
    return f"{sign}{ratio:.2g}" if ratio < 100 else f"{sign}{ratio:,.0f}"


def markdown(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    columns = [r for r in results if "phases" in r]
    if not columns:
        return "(no system ran)"

    def name(r: dict[str, Any]) -> str:
        suffix = f" x{r['processes']}" if r["processes"] > 1 else ""
        layer = f" / {r['layer']}" if r["layer"] not in {"inmemory", "none"} else ""
        return f"{r['system']}{suffix}{layer}"

    floor = next((r for r in columns if r["system"] == "floor"), None)
    dcrf = next((r for r in columns if r["system"] == "dcrf" and r["layer"] == columns[-1]["layer"]), None)
    dcrf = dcrf or next((r for r in columns if r["system"] == "dcrf"), None)
    lines = [
        "| metric | " + " | ".join(name(r) for r in columns) + " |",
        "|---|" + "--:|" * len(columns),
    ]

    def refs(get: Callable[[dict[str, Any]], Any], r: dict[str, Any]) -> list[tuple[str, Any]]:
        out = []
        if floor is not None and r is not floor:
            out.append(("F", get(floor)))
        if dcrf is not None and r is not dcrf:
            out.append(("D", get(dcrf)))
        return out

    def row(label: str, get: Callable[[dict[str, Any]], Any], fmt: str, ratio: bool = True) -> None:
        cells = [_cell(get(r), fmt, refs(get, r) if ratio else []) for r in columns]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    row("sockets subscribed", lambda r: r.get("subscribed"), "{:,d}", ratio=False)
    row("server RSS, S idle sockets (MB)", lambda r: r.get("rss_idle_mb"), "{:,.0f}")
    row("RSS per idle socket (KB)", lambda r: r.get("rss_per_socket_kb"), "{:,.1f}")
    if any(r["processes"] > 1 for r in columns):
        lines.append(
            "| sockets per server process | "
            + " | ".join("/".join(str(n) for n in r.get("sockets_per_process", [])) for r in columns)
            + " |"
        )
    for kind in args.phases:
        label = PHASE_LABELS[kind].format(C=args.writers, R=f"{args.rate:g}")
        if kind == "overload":
            label += f" (W={args.overload_writes})"
        lines.append(f"| **{label}** |" + " |" * len(columns))
        for key, text, fmt in ROWS:
            values = [r["phases"].get(kind, {}).get(key) for r in columns]
            if all(v is None for v in values) or (key == "resyncs" and not any(values)):
                continue

            def get(r: dict[str, Any], key: str = key, kind: str = kind) -> Any:
                return r["phases"].get(kind, {}).get(key)

            row(text, get, fmt, ratio=key not in NO_RATIO)
    failed = [r for r in results if "phases" not in r]
    notes = [
        "",
        f"S={args.sockets} sockets, W={args.writes} writes per phase"
        + (f" ({args.overload_writes} in overload)" if "overload" in args.phases else "")
        + f", {args.client_procs} client processes, P={args.processes} server processes (the floor: 1). "
        "In brackets: the value compared with the floor's (F) and djangochannelsrestframework's (D); "
        "x3 = three times it, /3 = a third of it.",
    ]
    notes += [f"{r['system']}: FAILED: {r.get('error')}" for r in failed]
    return "\n".join(lines + notes)


def environment() -> dict[str, Any]:
    versions = {}
    for package in ("Django", "channels", "channels-redis", "daphne", "uvicorn", "granian", "websockets", "uvloop"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    versions["djangochannelsrestframework"] = ""
    with contextlib.suppress(metadata.PackageNotFoundError):
        versions["djangochannelsrestframework"] = metadata.version("djangochannelsrestframework")
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False)
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "commit": git.stdout.strip(),
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "packages": versions,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--systems", nargs="+", default=DEFAULT_SYSTEMS, choices=sorted(SYSTEMS))
    parser.add_argument("--sockets", "-S", type=int, default=1000)
    parser.add_argument("--writes", "-W", type=int, default=200, help="writes per phase")
    parser.add_argument("--writers", "-C", type=int, default=8, help="writers of the concurrent phase")
    parser.add_argument("--rate", type=float, default=8.0, help="writes/s of the paced phase")
    parser.add_argument("--phases", nargs="+", default=["one", "concurrent", "paced"], choices=PHASES)
    parser.add_argument("--overload-writes", type=int, default=2000, help="writes of the overload phase")
    parser.add_argument("--processes", "-P", type=int, default=1, help="server processes (not the floor's)")
    parser.add_argument(
        "--layer",
        nargs="+",
        default=["inmemory"],
        choices=["inmemory", "redis", "redis-pubsub"],
        help="channel layer(s); redis ones start a redis-server of their own; each is a column",
    )
    parser.add_argument(
        "--floor-uvloop", action="store_true", help="run the floor on uvloop (default: asyncio's own loop)"
    )
    parser.add_argument("--client-procs", type=int, default=2, help="subscriber client processes")
    parser.add_argument("--drain", type=float, default=5.0, help="seconds without a delivery that end a phase")
    parser.add_argument("--drain-max", type=float, default=600.0, help="longest a phase may last, seconds")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--quick", action="store_true", help="a smoke run: S=100, W=20, rate 20/s")
    parser.add_argument("--report", type=Path, help="print the table of an earlier run's JSON, and run nothing")
    args = parser.parse_args(argv)
    if args.quick:
        args.sockets, args.writes, args.rate, args.overload_writes = 100, 20, 20.0, 100
    if args.processes > 1 and args.layer == ["inmemory"]:
        parser.error("--processes > 1 needs --layer redis or redis-pubsub (events must cross processes)")
    return args


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    results = []
    for name in args.systems:
        system = SYSTEMS[name]
        for layer in ["none"] if system.app == "floor" else args.layer:
            print(f"{name} ({layer}) ...", file=sys.stderr, flush=True)
            results.append(await bench_system(system, layer, args))
    return results


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.report:
        earlier = json.loads(args.report.read_text())
        print(markdown(earlier["results"], argparse.Namespace(**earlier["parameters"])))
        return
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        results = runner.run(main_async(args))
    table = markdown(results, args)
    print(table)
    failed = [r["system"] for r in results if "error" in r]
    if args.json:
        report = {
            "parameters": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "environment": environment(),
            "results": results,
            "markdown": table,
        }
        args.json.write_text(json.dumps(report, indent=2, default=str))
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
