"""
A test kit for projects that use Paintbrush: assert the events a block of code
publishes, and open sockets as a signed-in user with a valid Origin
(``docs/testing.md``).

    from paintbrush.testing import capture_events, connect, receive, subscribe

    class TodoTests(TestCase):  # TestCase works: the block's writes count as committed
        def test_marking_done_publishes_the_change(self):
            todo = Todo.objects.create(title="milk")
            with capture_events() as events:
                self.client.patch(f"/api/todos/{todo.pk}", {"done": True}, content_type="application/json")
            self.assertEqual(events.actions(), ["update"])

    class TodoSocketTests(TransactionTestCase):  # sockets need real commits
        async def test_a_new_todo_reaches_the_socket(self):
            ws = await connect("/ws", user=alice)  # signed in, Origin from ALLOWED_HOSTS
            await subscribe(ws, "todos")
            ...
            self.assertEqual((await receive(ws))["action"], "create")
            await ws.disconnect()

``capture_events`` listens where Paintbrush hands a committed write's messages to the
channel layer (``paintbrush.broadcast.send``), so it sees what every subscriber would
be sent, and still sends it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, Literal, cast, overload
from unittest import mock

from asgiref.sync import sync_to_async
from channels.routing import get_default_application
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.test import Client

from . import broadcast
from .documents.patches import apply as apply_patch
from .groups import event_group

__all__ = [
    "CapturedEvents",
    "DocumentReplica",
    "EventCapture",
    "Events",
    "capture_events",
    "communicator",
    "connect",
    "receive",
    "session_cookie",
    "subscribe",
]

# The logger Django's own commit uses for a robust on_commit callback that fails.
_commit_logger = logging.getLogger("django.db.backends.base")

# How long the socket helpers wait for a frame, in seconds: long enough for a loaded
# CI machine, and only ever waited in full by a failing test.
_TIMEOUT = 5.0


# -- events --------------------------------------------------------------------------------


class Events(list[dict[str, Any]]):
    """Events as a subscriber receives them (``docs/protocol.md``, section 2), in the
    order they were published: a list of dicts, with two shortcuts."""

    def of(self, resource: str) -> Events:
        """The events of one resource."""
        return Events(event for event in self if event.get("resource") == resource)

    def actions(self) -> list[str]:
        """Their actions: ``["create", "update", "delete"]``."""
        return [event.get("action", "") for event in self]


class CapturedEvents(Events):
    """What ``capture_events()`` recorded: the events (the list itself), where each went
    (``keys``), and the empty notices that tell role documents and access watchers to
    look again (``notices``)."""

    def __init__(self) -> None:
        super().__init__()
        #: Every channel-layer message, in order: ``(group, text)``; text is an encoded
        #: event, or empty for a notice.
        self.messages: list[tuple[str, str]] = []
        #: The groups sent a notice, in order and once per write: role documents'
        #: (``paintbrush.groups.document_group``, ``role_group``) and users' access
        #: (``access_group``).
        self.notices: list[str] = []
        self._keys: list[tuple[dict[str, Any], list[str]]] = []
        self._wheres: list[tuple[dict[str, Any], list[dict[str, Any] | None]]] = []
        #: The events as scoped subscriptions receive them, each with its ``where``.
        self.scoped = Events()
        self._lock = threading.Lock()

    def keys(self, event: dict[str, Any]) -> list[str]:
        """The event keys (``Resource.event_keys``) ``event``, one of these events,
        went to: ``["all", "user.5"]``."""
        for recorded, keys in self._keys:
            if recorded is event:
                return list(keys)
        raise ValueError("keys() takes one of the captured events themselves, not a copy")

    def wheres(self, event: dict[str, Any]) -> list[dict[str, Any] | None]:
        """The scopes (``paintbrush.scopes``) ``event`` went to: ``None`` for the
        unscoped subscriptions, else each scope's ``where``."""
        for recorded, wheres in self._wheres:
            if recorded is event:
                return list(wheres)
        raise ValueError("wheres() takes one of the captured events themselves, not a copy")

    def _record(self, messages: Sequence[tuple[str, str]]) -> None:
        # One event goes to each of its keys as the same text: it is listed once. Its
        # scoped copies (paintbrush.scopes) are listed in ``scoped``, and here only for
        # a resource that sent no unscoped event in this write (one that requires a
        # scope, such as a room's messages).
        batch: dict[str, tuple[list[str], list[dict[str, Any] | None]]] = {}
        unscoped: set[Any] = set()
        scoped: list[tuple[str, dict[str, Any]]] = []
        with self._lock:
            for group, text in messages:
                self.messages.append((group, text))
                if not text or text.startswith("["):  # a role document's notice: its parts
                    self.notices.append(group)
                    continue
                event: dict[str, Any] = json.loads(text)
                if "where" in event:
                    scoped.append((group, event))
                else:
                    unscoped.add(event.get("resource"))
                    self._add(batch, group, event)
            for group, event in scoped:
                self.scoped.append(dict(event))
                if event.get("resource") not in unscoped:
                    self._add(batch, group, event)

    def _add(
        self, batch: dict[str, tuple[list[str], list[dict[str, Any] | None]]], group: str, event: dict[str, Any]
    ) -> None:
        where = event.pop("where", None)
        identity = json.dumps(event, sort_keys=True)
        if identity not in batch:
            batch[identity] = ([], [])
            self.append(event)
            self._keys.append((event, batch[identity][0]))
            self._wheres.append((event, batch[identity][1]))
        keys, wheres = batch[identity]
        keys.append(group.removeprefix(event_group(str(event.get("resource")), "")))
        if where not in wheres:
            wheres.append(where)


class EventCapture:
    """The context manager ``capture_events()`` returns (``with`` or ``async with``)."""

    def __init__(self, using: str = DEFAULT_DB_ALIAS) -> None:
        self.using = using
        self.events = CapturedEvents()
        self._start = 0
        self._patch: Any = None

    def __enter__(self) -> CapturedEvents:
        if _in_event_loop():
            # The test's transaction is on another thread's connection than this one.
            raise RuntimeError("In async code, use `async with capture_events()`, not `with`.")
        return self._enter()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._exit(ok=exc_type is None)

    async def __aenter__(self) -> CapturedEvents:
        # The connection that holds the test's transaction is the one sync code uses.
        return await sync_to_async(self._enter)()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await sync_to_async(self._exit)(ok=exc_type is None)

    def _enter(self) -> CapturedEvents:
        if self._patch is not None:
            raise RuntimeError("This capture is already in use; call capture_events() again.")
        self._start = len(connections[self.using].run_on_commit)
        replaced, record = broadcast.send, self.events._record

        def send(messages: Sequence[tuple[str, str]]) -> None:
            record(messages)
            replaced(messages)

        # send_on_commit's callback looks ``send`` up when it runs, after the commit.
        self._patch = mock.patch.object(broadcast, "send", send)
        self._patch.start()
        return self.events

    def _exit(self, ok: bool) -> None:
        try:
            if ok:
                self._commit_for_the_test_case()
        finally:
            self._patch.stop()
            self._patch = None

    def _commit_for_the_test_case(self) -> None:
        """Inside a ``TestCase`` the test's transaction never commits: run the
        ``on_commit`` callbacks the block registered, as a commit would (and as
        ``captureOnCommitCallbacks(execute=True)`` does), and take them off the list so
        that nothing runs them twice. Callbacks waiting on a transaction the block left
        open (its own ``atomic()``) are left to that transaction."""
        connection = connections[self.using]
        # Django marks the atomic blocks TestCase opens; any other open block is a
        # transaction of the code under test, which decides for itself.
        if not all(getattr(block, "_from_testcase", False) for block in connection.atomic_blocks):
            return
        while len(connection.run_on_commit) > self._start:  # a callback may add more
            # (savepoint ids, callback, robust): the stubs know of two items only.
            pending = cast("list[tuple[Any, Callable[[], None], bool]]", connection.run_on_commit[self._start :])
            del connection.run_on_commit[self._start :]
            for _, callback, robust in pending:
                if not robust:
                    callback()
                    continue
                try:
                    callback()
                except Exception as exc:
                    _commit_logger.error(
                        "Error calling %s in on_commit() (%s).", callback.__qualname__, exc, exc_info=True
                    )


def capture_events(using: str = DEFAULT_DB_ALIAS) -> EventCapture:
    """Record the messages Paintbrush publishes while the block runs:

        with capture_events() as events:
            self.client.post("/api/todos", {"title": "milk"}, content_type="application/json")
        self.assertEqual(events.of("todos").actions(), ["create"])

    ``events`` lists the events as subscribers receive them; ``events.keys(event)``
    where one went; ``events.notices`` the groups sent a notice (role documents,
    access); ``events.messages`` every raw ``(group, text)``.

    Only what is published counts, that is what commits. In a ``TransactionTestCase``
    that is what commits during the block. In a ``TestCase``, whose transaction never
    commits, the block's writes count as committed when it ends: its ``on_commit``
    callbacks run then (all of them, as a commit would), unless the block ends inside
    an ``atomic()`` of its own. A rolled-back block publishes nothing. Messages still
    go to the channel layer. ``using`` is the database the writes go to. In async
    code, ``async with capture_events() as events``.
    """
    return EventCapture(using)


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


# -- sockets -------------------------------------------------------------------------------


def _allowed_host() -> str:
    """A host name ``ALLOWED_HOSTS`` accepts: the first one listed, so that it was there
    before the test runner added ``testserver`` (a validator that copies the list when
    the ASGI application is built, as Channels' ``AllowedHostsOriginValidator`` does,
    keeps it as it was; ``paintbrush.origins.SameOriginValidator`` reads it each time)."""
    for host in settings.ALLOWED_HOSTS:
        if host != "*":
            return host.removeprefix(".")  # ".example.com" allows example.com itself
    return "testserver"


def _session_cookie(user: Any) -> bytes:
    client = Client()
    client.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}".encode()


async def session_cookie(user: Any) -> bytes:
    """A ``Cookie`` header value of a new session where ``user`` is signed in, to open
    several sockets as one session: ``communicator(headers=[(b"cookie", cookie)])``.
    Signing in saves the user (``last_login``), which publishes nothing."""
    return await sync_to_async(_session_cookie)(user)


async def communicator(
    path: str = "/ws",
    user: Any = None,
    *,
    application: Any = None,
    origin: str | None = None,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> WebsocketCommunicator:
    """A Channels ``WebsocketCommunicator`` for ``path``, not yet connected: signed in
    as ``user`` if given (a session cookie, so the project's auth middleware runs), with
    a ``Host`` and ``Origin`` that ``ALLOWED_HOSTS`` accepts (``origin`` replaces it),
    for ``application`` (default: ``settings.ASGI_APPLICATION``). ``headers`` are
    added as given. For a handshake expected to be refused:

        ws = await communicator("/ws/doc")
        connected, code = await ws.connect()
    """
    host = _allowed_host()
    sent = [(b"host", host.encode()), (b"origin", (origin or f"http://{host}").encode())]
    if user is not None:
        sent.append((b"cookie", await session_cookie(user)))
    sent.extend(headers)
    return WebsocketCommunicator(application or get_default_application(), path, headers=sent)


async def connect(
    path: str = "/ws",
    user: Any = None,
    *,
    application: Any = None,
    origin: str | None = None,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> WebsocketCommunicator:
    """A connected ``communicator(...)``; fails the test if the handshake is refused.
    ``await ws.disconnect()`` when done."""
    ws = await communicator(path, user, application=application, origin=origin, headers=headers)
    connected, code = await ws.connect(timeout=_TIMEOUT)
    assert connected, f"the handshake to {path} was refused (close code {code})"
    return ws


async def receive(ws: WebsocketCommunicator, timeout: float = _TIMEOUT) -> Any:
    """The next frame of ``ws``, decoded."""
    return await ws.receive_json_from(timeout=timeout)


@overload
async def subscribe(ws: WebsocketCommunicator, resource: str, snapshot: Literal[False] = False) -> None: ...
@overload
async def subscribe(ws: WebsocketCommunicator, resource: str, snapshot: Literal[True]) -> list[Any]: ...
async def subscribe(ws: WebsocketCommunicator, resource: str, snapshot: bool = False) -> list[Any] | None:
    """Send ``opendoc`` and check it is answered ``opened``; with ``snapshot``, return
    the snapshot's items (all its frames). Fails the test on an error frame."""
    message: dict[str, Any] = {"action": "opendoc", "resource": resource}
    if snapshot:
        message["snapshot"] = True
    await ws.send_json_to(message)
    opened = await receive(ws)
    assert opened == {"type": "opened", "resource": resource}, opened
    if not snapshot:
        return None
    items: list[Any] = []
    while True:
        frame = await receive(ws)
        assert frame.get("action") == "snapshot" and frame.get("resource") == resource, frame
        items += frame["items"]
        if not frame.get("more"):
            return items


class DocumentReplica:
    """A role document as a client that takes patches holds it (protocol section 2c):
    feed it every ``doc`` frame in order; it checks each patch follows the revision
    it holds, as a client must.

        replica = DocumentReplica()
        replica.take(await receive(ws))     # {"type": "doc", "doc": {...}, "rev": 1}
        replica.take(await receive(ws))     # {"type": "doc", "patch": [...], "rev": 2}
        assert replica.doc == client.get("/api/doc").json()
    """

    def __init__(self) -> None:
        self.doc: Any = None
        self.rev: int | None = None
        #: How many frames were whole documents and how many patches.
        self.wholes = 0
        self.patches = 0

    def take(self, frame: dict[str, Any]) -> Any:
        """Apply one frame; raises ``AssertionError`` on a revision gap or a frame
        that is not a document."""
        if frame.get("type") != "doc" or not isinstance(frame.get("rev"), int):
            raise AssertionError(f"not a document frame with a revision: {frame!r}")
        if "doc" in frame:
            self.doc, self.wholes = frame["doc"], self.wholes + 1
        else:
            if self.rev is None or frame["rev"] != self.rev + 1:
                raise AssertionError(f"patch to revision {frame['rev']} on revision {self.rev}")
            self.doc, self.patches = apply_patch(self.doc, frame["patch"]), self.patches + 1
        self.rev = frame["rev"]
        return self.doc
