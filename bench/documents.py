"""
Role documents (Pattern 2): what one write costs when ``/ws/doc`` pushes every affected
user's document after it, before and after document patches (docs/protocol.md 2c, 3).

    python bench/documents.py                          # N = 100 and 300 customers
    python bench/documents.py --customers 1000 --repeat 5 --json documents.json
    python bench/documents.py --modes after-v1 after-patch --root ../other-checkout

The demo project under ``scripts/serve`` (one uvicorn process, SQLite file in a temporary
directory, in-memory channel layer), with 200 products, N customers with 2 orders each and
one staff user. Every customer holds one socket on ``/ws/doc`` signed in as themselves, the
staff user one more (the ``admin`` document: every user, every order, the catalog). The
sessions are made in the database by ``manage.py shell`` (no login, no password hashing),
so that the same preparation works for any tree.

Modes, each against its own server and freshly prepared database, in one run:

- ``before``: the tree at ``--baseline-ref`` (exported with ``git archive`` into a temporary
  directory, removed at exit), sockets on ``/ws/doc``: whole documents;
- ``after-v1``: the tree at ``--root`` (default: this checkout, uncommitted changes
  included), sockets on ``/ws/doc``: whole documents;
- ``after-patch``: the same tree, sockets on ``/ws/doc?patch=1``: patches where the server
  sends them (a tree without patches ignores the parameter and behaves as ``after-v1``);
- ``events``: the same tree and sockets, each subscribed on ``/ws`` to the live resource
  ``products`` instead (Pattern 1): the price change as one event to every socket, the
  floor of what sending anything to N sockets costs.

Writes, each ``--repeat`` times after one warm-up, ``--pause`` seconds apart, in turn:

- ``price``: the staff user changes one product's price (``PATCH /api/products/<id>``):
  every customer's document and the admin's change;
- ``quantity``: a customer changes the quantity of one of their orders
  (``PATCH /api/orders/<id>``): that customer's document and the admin's change.

Columns, each the median over the repeats:

- server CPU: user + system time of the server process (``/proc/<pid>/stat``, so in
  clock ticks of 10 ms) from just before the request until every affected socket has
  received a frame;
- bytes: WebSocket message payloads (UTF-8 JSON, without framing; no compression is
  negotiated) received for the write by all sockets, per affected customer socket, and
  by the admin socket;
- p50 / last: from the REST response's arrival (the write is committed by then) until
  half of / the last of the affected sockets received its first frame after the write;
  the same from the request's sending in the next column. The server waits
  ``DOC_COALESCE_SECONDS`` (50 ms in the demo) before it assembles anything;
- queries: SQL statements the server executed from the request until the pause after the
  write ended (the REST write itself included), counted without touching either tree: a
  ``sitecustomize`` module on the server's ``PYTHONPATH`` appends an execute wrapper to
  every database connection and keeps the count in a memory-mapped file this process reads.

A socket has the new document when its first frame after the write arrives (whole
document or patch). Patches are applied with ``paintbrush.documents.patches.apply`` (RFC
6902, checked against clients by the test suite) and revisions checked (a patch must
follow the revision before it). After each mode every socket's document is compared with
``GET /api/doc``: the admin's and those of a sample of customers directly, and every
customer's with what the admin's document says of them (their user, their orders, the
catalog). Mismatches are reported under the table.

The clients (all sockets, in this process, asyncio and ``websockets``) run on one core,
the server on the other. Nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import math
import mmap
import os
import platform
import resource
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

from bench.serving import cpu_seconds, free_port  # noqa: E402
from paintbrush.documents.patches import PatchError  # noqa: E402
from paintbrush.documents.patches import apply as apply_patch  # noqa: E402

HOST = "127.0.0.1"
#: A CSRF secret of Django's length (32), sent as cookie and header alike: any such
#: string passes Django's check, so no page needs to be fetched for a token.
CSRF = "benchdocumentsbenchdocumentsbenc"
SECRET_KEY = "bench-documents-secret-key-not-for-production"
WRITES = ("price", "quantity")


@dataclass(frozen=True)
class Mode:
    name: str
    tree: str  # "baseline" or "current"
    path: str  # the socket's URL path
    #: Pattern 1 instead: each socket subscribes to this resource's events on /ws.
    events: str | None = None
    writes: tuple[str, ...] = WRITES


MODES = {
    m.name: m
    for m in (
        Mode("before", "baseline", "/ws/doc"),
        Mode("after-v1", "current", "/ws/doc"),
        Mode("after-patch", "current", "/ws/doc?patch=1"),
        # The floor a document push is compared with: the same price change as one
        # Pattern 1 event to the same sockets (each subscribed to products on /ws).
        Mode("events", "current", "/ws", events="products", writes=("price",)),
    )
}


# -- the server process, from /proc --------------------------------------------------------


def raise_open_files(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        if target < needed:
            print(f"warning: open files limited to {target}, {needed} wanted", file=sys.stderr)


# -- counting the server's queries ----------------------------------------------------------

#: Installed as ``sitecustomize`` on the server's PYTHONPATH; idle unless the variable names
#: the counter's file. Django's ``connection_created`` fires on every (re)connection of a
#: connection object, hence the membership test before appending the wrapper.
SITECUSTOMIZE = textwrap.dedent(
    '''\
    """bench/documents.py: counts the SQL statements this process executes."""
    import os

    _PATH = os.environ.get("PB_BENCH_QUERY_COUNTER")
    if _PATH:
        import mmap
        import struct
        import threading

        from django.db.backends.signals import connection_created

        _lock = threading.Lock()
        _fd = os.open(_PATH, os.O_RDWR)
        _map = mmap.mmap(_fd, 8)
        _count = [struct.unpack_from("<Q", _map, 0)[0]]

        def _count_query(execute, sql, params, many, context):
            with _lock:
                _count[0] += 1
                struct.pack_into("<Q", _map, 0, _count[0])
            return execute(sql, params, many, context)

        def _on_connection(sender, connection, **kwargs):
            if _count_query not in connection.execute_wrappers:
                connection.execute_wrappers.append(_count_query)

        connection_created.connect(_on_connection, weak=False)
    '''
)


class QueryCounter:
    """The server's count of SQL statements, read from the file its sitecustomize maps."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / "queries.bin"
        self.path.write_bytes(b"\0" * 8)
        (directory / "sitecustomize.py").write_text(SITECUSTOMIZE)
        self._file = self.path.open("r+b")
        self._map = mmap.mmap(self._file.fileno(), 8)

    def read(self) -> int:
        return int(struct.unpack_from("<Q", self._map, 0)[0])

    def close(self) -> None:
        self._map.close()
        self._file.close()


# -- trees ----------------------------------------------------------------------------------


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=HERE, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@contextlib.contextmanager
def exported_tree(ref: str) -> Iterator[tuple[Path, str]]:
    """The tree of ``ref`` in a temporary directory (``git archive``: nothing is added to
    the repository), and its commit; removed on exit."""
    commit = git("rev-parse", "--verify", f"{ref}^{{commit}}")
    directory = Path(tempfile.mkdtemp(prefix="pb-documents-baseline-"))
    try:
        archive = subprocess.Popen(["git", "archive", "--format=tar", commit], cwd=HERE, stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", str(directory)], stdin=archive.stdout, check=True)
        if archive.stdout is not None:
            archive.stdout.close()
        if archive.wait() != 0:
            raise RuntimeError(f"git archive {commit} failed")
        yield directory, commit
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def describe_tree(root: Path) -> str:
    """The commit of a checkout, with "+changes" when its work tree differs from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, check=False)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, check=False)
    except OSError:
        return "?"
    if head.returncode:
        return "?"
    return head.stdout.decode().strip() + (" +changes" if dirty.stdout.strip() else "")


def accepts_paintbrush_settings(root: Path) -> bool:
    """Whether the tree's settings merge ``PAINTBRUSH_SETTINGS`` from the environment."""
    with contextlib.suppress(OSError):
        return "PAINTBRUSH_SETTINGS" in (root / "project" / "settings.py").read_text()
    return False


# -- the database ---------------------------------------------------------------------------

#: Run by ``manage.py shell -c`` in the served tree: users, products, orders, sessions.
PREPARE = textwrap.dedent(
    """\
    import datetime, json, os
    from decimal import Decimal

    import paintbrush
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.db import transaction
    from django.utils import timezone
    from django.utils.crypto import get_random_string

    from project.demo.models import Order, Product

    customers = int(os.environ["BENCH_CUSTOMERS"])
    products = int(os.environ["BENCH_PRODUCTS"])
    per_customer = int(os.environ["BENCH_ORDERS_PER_CUSTOMER"])
    User = get_user_model()
    with transaction.atomic():
        User.objects.create(username="admin", email="admin@example.com", is_staff=True, password=make_password(None))
        User.objects.bulk_create(
            User(username=f"customer{i:05d}", email=f"customer{i:05d}@example.com", password=make_password(None))
            for i in range(customers)
        )
        Product.objects.bulk_create(
            Product(name=f"Product number {i}", price=Decimal("9.99") + i) for i in range(products)
        )
    admin = User.objects.get(username="admin")
    people = list(User.objects.filter(is_staff=False).order_by("id"))
    catalog = list(Product.objects.order_by("id").values_list("id", flat=True))
    with transaction.atomic():
        Order.objects.bulk_create(
            Order(user=person, product_id=catalog[(i * per_customer + j) % len(catalog)], quantity=1)
            for i, person in enumerate(people)
            for j in range(per_customer)
        )
    orders = {}
    for user_id, order_id in Order.objects.order_by("id").values_list("user_id", "id"):
        orders.setdefault(user_id, []).append(order_id)
    store = SessionStore()
    expires = timezone.now() + datetime.timedelta(days=1)
    sessions = {}
    rows = []
    for user in [admin, *people]:
        key = get_random_string(32, "abcdefghijklmnopqrstuvwxyz0123456789")
        data = {
            "_auth_user_id": str(user.pk),
            "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
            "_auth_user_hash": user.get_session_auth_hash(),
        }
        rows.append(Session(session_key=key, session_data=store.encode(data), expire_date=expires))
        sessions[user.pk] = key
    Session.objects.bulk_create(rows)

    def account(user):
        return {"id": user.pk, "session": sessions[user.pk], "orders": orders.get(user.pk, [])}

    with open(os.environ["BENCH_FIXTURE"], "w") as out:
        json.dump(
            {
                "paintbrush": paintbrush.__file__,
                "admin": account(admin),
                "customers": [account(p) for p in people],
                "products": catalog,
            },
            out,
        )
    """
)


@dataclass(frozen=True)
class Account:
    user_id: int
    session: str
    orders: list[int]


@dataclass(frozen=True)
class Fixture:
    admin: Account
    customers: list[Account]
    products: list[int]


def prepare(root: Path, env: dict[str, str], customers: int, products: int, orders: int) -> Fixture:
    fixture_path = Path(env["BENCH_WORKDIR"]) / "fixture.json"
    run_env = {
        **env,
        "BENCH_CUSTOMERS": str(customers),
        "BENCH_PRODUCTS": str(products),
        "BENCH_ORDERS_PER_CUSTOMER": str(orders),
        "BENCH_FIXTURE": str(fixture_path),
    }
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "-v", "0"], cwd=root, env=run_env, check=True)
    subprocess.run([python, "manage.py", "shell", "-v", "0", "-c", PREPARE], cwd=root, env=run_env, check=True)
    data = json.loads(fixture_path.read_text())
    served = Path(data["paintbrush"]).resolve()
    if not served.is_relative_to(root):
        raise RuntimeError(f"the tree {root} imported paintbrush from {served}, not its own")

    def account(raw: dict[str, Any]) -> Account:
        return Account(int(raw["id"]), str(raw["session"]), [int(o) for o in raw["orders"]])

    return Fixture(account(data["admin"]), [account(c) for c in data["customers"]], [int(p) for p in data["products"]])


def server_env(work: Path, counter: QueryCounter, root: Path) -> dict[str, str]:
    drop = {"REDIS_URL", "REDIS_LAYER", "WEB_CONCURRENCY", "COVERAGE_PROCESS_START", "COVERAGE_PROCESS_CONFIG"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env |= {
        "DATABASE_URL": f"sqlite:///{work}/db.sqlite3",
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DJANGO_SECRET_KEY": SECRET_KEY,
        "DJANGO_DEBUG": "0",
        "PYTHON": sys.executable,
        # Only the counter's directory: the served tree's own code comes first (its cwd).
        "PYTHONPATH": str(counter.directory),
        "PYTHONUNBUFFERED": "1",
        "BENCH_WORKDIR": str(work),
    }
    if accepts_paintbrush_settings(root):
        # Sockets are counted per signed-in user (one each here); lifted all the same,
        # in case a tree counts them per address (they all come from 127.0.0.1).
        env["PAINTBRUSH_SETTINGS"] = json.dumps({"MAX_SOCKETS_PER_CLIENT": 100_000})
    return env


# -- HTTP -----------------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    body: bytes
    sent: float  # monotonic time the request was written
    received: float  # monotonic time the whole response had arrived

    def json(self) -> Any:
        return json.loads(self.body)


async def http(port: int, method: str, path: str, *, session: str | None = None, body: Any = None) -> Response:
    """One request on its own connection (``Connection: close``), signed in by ``session``
    (with the CSRF cookie and header a signed-in write needs)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        payload = b"" if body is None else json.dumps(body).encode()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}", "Connection: close", "Accept: application/json"]
        cookies = [f"csrftoken={CSRF}"]
        if session is not None:
            cookies.append(f"sessionid={session}")
        lines.append("Cookie: " + "; ".join(cookies))
        if method not in {"GET", "HEAD", "OPTIONS"}:
            lines.append(f"X-CSRFToken: {CSRF}")
        if body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode() + payload
        sent = time.monotonic()
        writer.write(request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            content = await reader.readexactly(int(headers["content-length"]))
        elif "chunked" in headers.get("transfer-encoding", ""):
            chunks = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await reader.readexactly(size + 2)
                if not size:
                    break
                chunks.append(chunk[:-2])
            content = b"".join(chunks)
        else:
            content = await reader.read()
        return Response(int(status_line.split()[1]), content, sent, time.monotonic())
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


# -- the sockets ----------------------------------------------------------------------------


@dataclass
class Round:
    """One write, as the sockets see it."""

    pending: set[int]
    started: float
    arrivals: dict[int, float] = field(default_factory=dict)
    done: asyncio.Event = field(default_factory=asyncio.Event)


class DocSocket:
    """One signed-in ``/ws/doc`` socket: frames are timed and queued as they arrive, and
    decoded (and patches applied) only between writes, so that reading stays cheap."""

    def __init__(
        self, index: int, account: Account, admin: bool, ws: ClientConnection, fleet: Fleet, *, events: bool = False
    ) -> None:
        self.index = index
        self.events = events
        self.account = account
        self.admin = admin
        self.ws = ws
        self.fleet = fleet
        self.inbox: list[tuple[float, bytes]] = []
        self.doc: Any = None
        self.rev: int | None = None
        self.broken: str | None = None  # why the document here can no longer be trusted
        self.patches = 0  # patch frames received (the others held whole documents)
        self.closed: str | None = None
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        try:
            while True:
                raw = await self.ws.recv(decode=False)
                now = time.monotonic()
                self.inbox.append((now, raw.encode() if isinstance(raw, str) else raw))
                self.fleet.arrived(self.index, now)
        except ConnectionClosed as exc:
            self.closed = f"closed {exc.rcvd.code if exc.rcvd else '?'}"

    def digest(self) -> tuple[int, int]:
        """Decode the queued frames into ``doc``: (bytes, frames) they held."""
        frames, self.inbox = self.inbox, []
        size = 0
        for _, raw in frames:
            size += len(raw)
            try:
                self._apply(json.loads(raw))
            except (PatchError, ValueError, KeyError, TypeError, IndexError) as exc:
                self.broken = self.broken or f"{type(exc).__name__}: {exc}"
        return size, len(frames)

    def _apply(self, frame: dict[str, Any]) -> None:
        if self.events:  # Pattern 1: "opened", then the events, counted only
            return
        if frame.get("type") != "doc":
            self.broken = self.broken or f"unexpected frame {json.dumps(frame)[:200]}"
            return
        rev = frame.get("rev")
        if "doc" in frame:
            self.doc = frame["doc"]
        elif "patch" in frame:
            if self.doc is None:
                raise PatchError("a patch before any document")
            if rev is not None and self.rev is not None and rev != self.rev + 1:
                raise PatchError(f"patch to rev {rev} on rev {self.rev}")
            self.doc = apply_patch(self.doc, frame["patch"])
            self.patches += 1
        else:
            raise PatchError(f"a doc frame with neither doc nor patch: {sorted(frame)}")
        self.rev = rev if isinstance(rev, int) else None


class Fleet:
    """All the sockets of one mode, and the write they are waiting on."""

    def __init__(self) -> None:
        self.sockets: list[DocSocket] = []
        self.round: Round | None = None
        self.first_frame_bytes: list[int] = []

    def arrived(self, index: int, now: float) -> None:
        current = self.round
        if current is not None and index in current.pending and now >= current.started:
            current.pending.discard(index)
            current.arrivals[index] = now
            if not current.pending:
                current.done.set()

    def begin(self, affected: set[int]) -> Round:
        self.round = Round(set(affected), time.monotonic())
        return self.round

    def end(self) -> None:
        self.round = None

    async def open(self, port: int, mode: Mode, fixture: Fixture, concurrency: int) -> None:
        url = f"ws://{HOST}:{port}{mode.path}"
        origin = Origin(f"http://{HOST}:{port}")
        gate = asyncio.Semaphore(concurrency)
        accounts = [(fixture.admin, True)] + [(c, False) for c in fixture.customers]

        async def one(index: int, account: Account, admin: bool) -> DocSocket:
            async with gate:
                ws = await connect(
                    url,
                    origin=origin,
                    additional_headers={"Cookie": f"sessionid={account.session}"},
                    compression=None,
                    max_size=None,
                    ping_interval=None,
                    open_timeout=120,
                    close_timeout=5,
                )
                socket = DocSocket(index, account, admin, ws, self, events=mode.events is not None)
                if mode.events is not None:  # its first frame is "opened"
                    await ws.send(json.dumps({"action": "opendoc", "resource": mode.events}))
                return socket

        self.sockets = list(await asyncio.gather(*(one(i, a, admin) for i, (a, admin) in enumerate(accounts))))
        # Every socket's first frame is its whole document (or "opened").
        first = self.begin(set(range(len(self.sockets))))
        first.pending -= {s.index for s in self.sockets if s.inbox}
        if first.pending:
            await asyncio.wait_for(first.done.wait(), 300)
        self.end()
        self.first_frame_bytes = [s.digest()[0] for s in self.sockets]

    async def close(self) -> None:
        async def one(s: DocSocket) -> None:
            with contextlib.suppress(Exception):
                await s.ws.close()
            s.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await s.reader

        await asyncio.gather(*(one(s) for s in self.sockets))

    @property
    def admin(self) -> DocSocket:
        return self.sockets[0]


# -- one write ------------------------------------------------------------------------------


@dataclass
class Sample:
    write: str
    status: int
    server_cpu_ms: float
    queries: int
    bytes_total: int
    bytes_per_customer: float | None
    bytes_admin: int
    frames: int
    patch_frames: int
    affected: int
    missing: int  # affected sockets with no frame within --timeout
    unexpected: int  # frames to sockets the write does not concern, or a second frame
    p50_ms: float
    last_ms: float
    p50_from_request_ms: float
    last_from_request_ms: float
    response_ms: float


class Writer:
    """The writes of one mode: each sets a value it never set before, so that every
    write changes the documents it concerns."""

    def __init__(self, port: int, pid: int, fleet: Fleet, fixture: Fixture, counter: QueryCounter) -> None:
        self.port, self.pid, self.fleet, self.fixture, self.counter = port, pid, fleet, fixture, counter
        self.number = 0

    def _request(self, kind: str) -> tuple[str, str, dict[str, Any], set[int]]:
        self.number += 1
        n = self.number
        if kind == "price":
            product = self.fixture.products[n % len(self.fixture.products)]
            every = set(range(len(self.fleet.sockets)))
            return self.fixture.admin.session, f"/api/products/{product}", {"price": f"{100 + n}.25"}, every
        index = 1 + (n * 37) % len(self.fixture.customers)  # spread over the customers
        customer = self.fleet.sockets[index].account
        return customer.session, f"/api/orders/{customer.orders[0]}", {"quantity": n + 1}, {0, index}

    async def write(self, kind: str, *, timeout: float, pause: float) -> Sample:
        session, path, body, affected = self._request(kind)
        fleet = self.fleet
        queries_before = self.counter.read()
        cpu_before = cpu_seconds(self.pid)
        current = fleet.begin(affected)
        response = await http(self.port, "PATCH", path, session=session, body=body)
        if response.status != 200:
            fleet.end()
            raise RuntimeError(f"PATCH {path} {body}: {response.status} {response.body[:300]!r}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(current.done.wait(), timeout)
        cpu = cpu_seconds(self.pid) - cpu_before
        await asyncio.sleep(pause)
        queries = self.counter.read() - queries_before
        fleet.end()
        total = frames = admin_bytes = customer_bytes = unexpected = 0
        patches = sum(s.patches for s in fleet.sockets)
        for s in fleet.sockets:
            size, count = s.digest()
            total += size
            frames += count
            if s.index not in affected:
                unexpected += count
            else:
                unexpected += max(0, count - 1)
            if s.admin:
                admin_bytes += size
            elif s.index in affected:
                customer_bytes += size
        customers = len(affected - {0})
        arrivals = sorted(current.arrivals.values())

        def ms(values: list[float], since: float, q: float) -> float:
            if not values:
                return float("nan")
            return (values[min(len(values) - 1, int(q * len(values)))] - since) * 1000

        return Sample(
            write=kind,
            status=response.status,
            server_cpu_ms=cpu * 1000,
            queries=queries,
            bytes_total=total,
            bytes_per_customer=customer_bytes / customers if customers else None,
            bytes_admin=admin_bytes,
            frames=frames,
            patch_frames=sum(s.patches for s in fleet.sockets) - patches,
            affected=len(affected),
            missing=len(current.pending),
            unexpected=unexpected,
            p50_ms=ms(arrivals, response.received, 0.5),
            last_ms=ms(arrivals, response.received, 1.0),
            p50_from_request_ms=ms(arrivals, response.sent, 0.5),
            last_from_request_ms=ms(arrivals, response.sent, 1.0),
            response_ms=(response.received - response.sent) * 1000,
        )


# -- checking the documents -----------------------------------------------------------------


async def verify(port: int, fleet: Fleet, sample: int) -> dict[str, Any]:
    """Every socket's document against ``GET /api/doc``: the admin's and ``sample``
    customers' directly; every customer's against what the admin's document says."""
    admin = await http(port, "GET", "/api/doc", session=fleet.admin.account.session)
    if admin.status != 200:
        return {"error": f"GET /api/doc as admin: {admin.status}"}
    truth = admin.json()
    problems: list[str] = []
    if fleet.admin.doc != truth:
        problems.append(f"admin: {fleet.admin.broken or 'differs from GET /api/doc'}")
    customers = fleet.sockets[1:]
    step = max(1, len(customers) // max(1, sample))
    chosen = {s.index for s in customers[::step][:sample]} | {customers[-1].index}
    direct = 0
    users = {u["id"]: u for u in truth.get("users", [])}
    for s in customers:
        if s.index in chosen:
            answer = await http(port, "GET", "/api/doc", session=s.account.session)
            direct += 1
            expected = answer.json() if answer.status == 200 else None
            if s.doc != expected:
                problems.append(f"customer {s.account.user_id}: {s.broken or 'differs from GET /api/doc'}")
                continue
        derived = {
            "role": "customer",
            "user": users.get(s.account.user_id),
            "orders": [o for o in truth.get("orders", []) if o.get("user") == s.account.user_id],
            "products": truth.get("products"),
        }
        if s.doc != derived:
            problems.append(f"customer {s.account.user_id}: {s.broken or 'differs from the admin document'}")
    closed = [s.index for s in fleet.sockets if s.closed]
    return {
        "sockets": len(fleet.sockets),
        "checked_against_get": direct + 1,
        "mismatches": len(problems),
        "problems": problems[:20],
        "closed_sockets": len(closed),
    }


# -- one mode -------------------------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def tail(self) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
        return ""


async def start_server(root: Path, env: dict[str, str], work: Path) -> Server:
    port = free_port()
    log = work / "server.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            ["bash", "scripts/serve", f"{HOST}:{port}"],
            cwd=root,
            env=env,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    server = Server(process, port, log)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited:\n{server.tail()}")
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            if (await http(port, "GET", "/api/doc")).status in {401, 403}:
                return server
        await asyncio.sleep(0.2)
    server.stop()
    raise RuntimeError(f"the server did not answer within 90 s:\n{server.tail()}")


def summarise(samples: list[Sample]) -> dict[str, Any]:
    def median(name: str) -> float | None:
        values = [getattr(s, name) for s in samples if getattr(s, name) is not None]
        values = [v for v in values if not math.isnan(v)]
        return statistics.median(values) if values else None

    keys = [
        "server_cpu_ms",
        "queries",
        "bytes_total",
        "bytes_per_customer",
        "bytes_admin",
        "frames",
        "p50_ms",
        "last_ms",
        "p50_from_request_ms",
        "last_from_request_ms",
        "response_ms",
    ]
    summary: dict[str, Any] = {key: median(key) for key in keys}
    summary["server_cpu_ms_mean"] = statistics.fmean(s.server_cpu_ms for s in samples)
    summary["frames_total"] = sum(s.frames for s in samples)
    summary["patch_frames_total"] = sum(s.patch_frames for s in samples)
    summary["missing"] = sum(s.missing for s in samples)
    summary["unexpected"] = sum(s.unexpected for s in samples)
    summary["samples"] = [asdict(s) for s in samples]
    return summary


async def run_mode(mode: Mode, root: Path, customers: int, args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"mode": mode.name, "root": str(root), "path": mode.path}
    with tempfile.TemporaryDirectory(prefix=f"pb-documents-{mode.name}-") as name:
        work = Path(name)
        counter = QueryCounter(work)
        env = server_env(work, counter, root)
        fleet = Fleet()
        server: Server | None = None
        try:
            started = time.monotonic()
            fixture = prepare(root, env, customers, args.products, args.orders)
            result["prepare_s"] = time.monotonic() - started
            server = await start_server(root, {**env, "PB_BENCH_QUERY_COUNTER": str(counter.path)}, work)
            pid = server.process.pid  # scripts/serve execs uvicorn: one process
            queries, cpu, started = counter.read(), cpu_seconds(pid), time.monotonic()
            await fleet.open(server.port, mode, fixture, args.connect_concurrency)
            result["connect"] = {
                "sockets": len(fleet.sockets),
                "seconds": time.monotonic() - started,
                "server_cpu_s": cpu_seconds(pid) - cpu,
                "queries": counter.read() - queries,
                "first_frame_bytes_admin": fleet.first_frame_bytes[0],
                "first_frame_bytes_customer": statistics.median(fleet.first_frame_bytes[1:]),
            }
            writer = Writer(server.port, pid, fleet, fixture, counter)
            result["writes"] = {}
            for kind in mode.writes:
                for _ in range(args.warmup):
                    await writer.write(kind, timeout=args.timeout, pause=args.pause)
                samples = [await writer.write(kind, timeout=args.timeout, pause=args.pause) for _ in range(args.repeat)]
                summary = summarise(samples)
                result["writes"][kind] = summary
                print(
                    f"  N={customers} {mode.name:<11} {kind:<8} cpu {summary['server_cpu_ms']:7.0f} ms"
                    f"  bytes {summary['bytes_total']:>10,.0f}  p50 {summary['p50_ms']:6.1f} ms"
                    f"  last {summary['last_ms']:7.1f} ms  queries {summary['queries']:5.0f}"
                    f"  missing {summary['missing']}  unexpected {summary['unexpected']}",
                    file=sys.stderr,
                    flush=True,
                )
            if mode.events is None:
                result["verify"] = await verify(server.port, fleet, args.verify_sample)
            if result.get("verify", {}).get("mismatches") or result.get("verify", {}).get("error"):
                print(f"  N={customers} {mode.name}: {result['verify']}", file=sys.stderr, flush=True)
        except Exception as exc:
            result["error"] = f"{type(exc).__name__}: {exc}"
            print(f"  N={customers} {mode.name}: FAILED {result['error']}", file=sys.stderr, flush=True)
            if server is not None:
                print(server.tail(), file=sys.stderr)
        finally:
            await fleet.close()
            if server is not None:
                server.stop()
            counter.close()
    return result


# -- report ---------------------------------------------------------------------------------


def _number(value: Any, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def markdown(customers: int, results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        f"### N = {customers:,} customers ({args.products} products, {customers * args.orders:,} orders, "
        f"one admin socket; median of {args.repeat} writes)",
        "",
        "| mode | write | server CPU ms | bytes total | bytes per customer socket | bytes to admin "
        "| p50 ms | last ms | p50 / last from request ms | queries |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    notes = []
    for result in results:
        if "error" in result:
            notes.append(f"- {result['mode']}: FAILED: {result['error']}")
        for kind, s in result.get("writes", {}).items():
            lines.append(
                f"| {result['mode']} | {kind} | {_number(s['server_cpu_ms'])} | {_number(s['bytes_total'])} "
                f"| {_number(s['bytes_per_customer'])} | {_number(s['bytes_admin'])} | {_number(s['p50_ms'], 1)} "
                f"| {_number(s['last_ms'], 1)} | {_number(s['p50_from_request_ms'], 1)} / "
                f"{_number(s['last_from_request_ms'], 1)} | {_number(s['queries'])} |"
            )
            if s["missing"] or s["unexpected"]:
                notes.append(
                    f"- {result['mode']} {kind}: {s['missing']} affected sockets without a frame, "
                    f"{s['unexpected']} frames beyond one per affected socket"
                )
        check = result.get("verify")
        if check is not None:
            if "error" in check:
                notes.append(f"- {result['mode']}: check failed: {check['error']}")
            else:
                notes.append(
                    f"- {result['mode']} ({result.get('tree', '?')}): {check['sockets']} documents checked, "
                    f"{check['checked_against_get']} against GET /api/doc, the rest against the admin's; "
                    f"{check['mismatches']} mismatches"
                    + (f" ({'; '.join(check['problems'][:3])})" if check["problems"] else "")
                    + (f"; {check['closed_sockets']} sockets closed" if check["closed_sockets"] else "")
                    + "; frames after the writes: "
                    + ", ".join(
                        f"{kind} {s['frames_total']:,} ({s['patch_frames_total']:,} patches)"
                        for kind, s in result.get("writes", {}).items()
                    )
                )
    return "\n".join(lines + (["", *notes] if notes else []))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, nargs="+", default=[100, 300], help="N, one table each")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--root", type=Path, default=HERE, help="the checkout served as 'after' (default: this one)")
    parser.add_argument("--baseline-ref", default="8011417", help="the commit served as 'before'")
    parser.add_argument("--repeat", type=int, default=5, help="measured writes of each kind")
    parser.add_argument("--warmup", type=int, default=1, help="writes of each kind before those measured")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds after each write's last delivery")
    parser.add_argument("--timeout", type=float, default=120.0, help="longest wait for a write's deliveries, s")
    parser.add_argument("--products", type=int, default=200)
    parser.add_argument("--orders", type=int, default=2, help="orders per customer")
    parser.add_argument("--verify-sample", type=int, default=5, help="customers compared with GET /api/doc")
    parser.add_argument("--connect-concurrency", type=int, default=20, help="handshakes in flight at once")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    if args.orders < 1 or args.products < 1 or min(args.customers) < 1:
        parser.error("--customers, --products and --orders must be at least 1")
    return args


async def main_async(args: argparse.Namespace) -> dict[int, list[dict[str, Any]]]:
    root = args.root.resolve()
    results: dict[int, list[dict[str, Any]]] = {}
    with contextlib.ExitStack() as stack:
        trees: dict[str, tuple[Path, str]] = {"current": (root, describe_tree(root))}
        if any(MODES[m].tree == "baseline" for m in args.modes):
            trees["baseline"] = stack.enter_context(exported_tree(args.baseline_ref))
        for customers in args.customers:
            results[customers] = []
            for name in args.modes:
                mode = MODES[name]
                tree, commit = trees[mode.tree]
                label = commit[:12] if mode.tree == "baseline" else commit
                print(f"N={customers} {name}: {tree} ({label}) {mode.path}", file=sys.stderr, flush=True)
                result = await run_mode(mode, tree, customers, args)
                result["tree"] = label
                results[customers].append(result)
    return results


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    raise_open_files(max(args.customers) + 200)
    started = time.monotonic()
    results = asyncio.run(main_async(args))
    tables = [markdown(n, rs, args) for n, rs in results.items()]
    print("\n\n".join(tables))
    wall = time.monotonic() - started
    print(f"\n({wall:.0f} s)", file=sys.stderr)
    if args.json:
        report = {
            "parameters": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "environment": {
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "wall_s": wall,
            },
            "results": {str(n): rs for n, rs in results.items()},
            "markdown": tables,
        }
        args.json.write_text(json.dumps(report, indent=2, default=str))
    if any("error" in r for rs in results.values() for r in rs):
        raise SystemExit("some modes failed")


if __name__ == "__main__":
    main()
