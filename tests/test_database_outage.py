"""
The database goes away: every REST request to Paintbrush's API that needs it is answered
with a JSON ``503`` and ``Retry-After`` (``paintbrush.handlers``), never Django's HTML
500, and nothing half-written is left or published.

The unit tests make a query fail (``connection.execute_wrapper``); the real-process test
stops a private PostgreSQL (``tests/postgres.py``) under ``scripts/serve`` while clients
write, and prints one line ``FAULT-FIGURES db-outage ...`` with what they were answered.
It needs PostgreSQL's server binaries (``scripts/test`` installs them): without them it
is skipped locally and fails in CI, where a skip would hide a missing service.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import unittest
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from unittest import mock

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, InterfaceError, OperationalError, connection
from django.http import Http404, HttpResponse
from django.test import SimpleTestCase, TransactionTestCase, override_settings
from rest_framework.exceptions import APIException, NotFound
from rest_framework.response import Response
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect
from websockets.typing import Origin

from paintbrush import checks
from paintbrush.handlers import DatabaseUnavailable, exception_handler
from paintbrush.testing import capture_events
from project.demo.models import Todo

from .postgres import PG_BIN, PostgresServer
from .servers import ROOT, ServerProcess, http_call

if PG_BIN is None and os.environ.get("CI"):
    raise RuntimeError("CI must provide PostgreSQL's initdb for the database-outage test (scripts/test installs it).")

needs_postgres = unittest.skipIf(PG_BIN is None, "install postgresql to run the database-outage test")


DETAIL = "The database is unavailable; try again later."


@contextlib.contextmanager
def failing(statement: str, error: Exception | None = None, table: str = "") -> Iterator[None]:
    """Every query starting with ``statement`` (and naming ``table``) raises ``error``,
    as the driver's errors reach Django's callers while the database is down."""

    def wrapper(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        if sql.lstrip().upper().startswith(statement) and table in sql:
            raise error or OperationalError("connection failed: Connection refused\n\tIs the server running?")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield


def enveloping_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """A project's own handler: its own error shape, no Retry-After, no set_rollback."""
    if isinstance(exc, Http404):
        exc = NotFound()
    if not isinstance(exc, APIException):
        return None
    return Response({"error": {"detail": exc.detail}}, status=exc.status_code)


def unanswering_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    return None


def rest_framework(**options: Any) -> dict[str, Any]:
    return {**settings.REST_FRAMEWORK, **options}


# Real commits: a failed write rolls back as in production (a TestCase's single
# transaction would be spoilt by the first failed statement).
class RestOutageTests(TransactionTestCase):
    def send(self, method: str, path: str, body: Any = None) -> HttpResponse:
        """One request that meets the outage: its response, with the one warning checked."""
        with self.assertLogs("paintbrush.handlers", "WARNING") as logs:
            response = getattr(self.client, method)(path, body, content_type="application/json")
        self.assertEqual(len(logs.records), 1, logs.output)
        return response  # type: ignore[no-any-return]

    def assert_503(self, response: HttpResponse, retry_after: str = "5") -> None:
        self.assertEqual(response.status_code, 503, response.content)
        self.assertEqual(response["Content-Type"], "application/json")
        self.assertEqual(response["Retry-After"], retry_after)
        self.assertEqual(json.loads(response.content), {"detail": DETAIL})

    def test_a_create_whose_insert_fails_is_a_json_503_and_writes_and_publishes_nothing(self) -> None:
        with capture_events() as events, failing("INSERT"):
            response = self.send("post", "/api/todos", {"title": "milk"})
        self.assert_503(response)
        self.assertEqual(Todo.objects.count(), 0)
        self.assertEqual(events.actions(), [])

    def test_a_connection_lost_at_commit_is_a_503_and_rolls_the_write_back(self) -> None:
        todo = Todo.objects.create(title="milk")
        lost = OperationalError("server closed the connection unexpectedly")
        with capture_events() as events, mock.patch.object(connection, "commit", side_effect=lost):
            responses = [
                self.send("post", "/api/todos", {"title": "bread"}),
                self.send("patch", f"/api/todos/{todo.pk}", {"done": True}),
                self.send("delete", f"/api/todos/{todo.pk}"),
            ]
        for response in responses:
            self.assert_503(response)
        self.assertEqual(list(Todo.objects.values_list("title", "done", "version")), [("milk", False, 1)])
        self.assertEqual(events.actions(), [])

    def test_updates_and_deletes_that_lose_the_database_change_nothing(self) -> None:
        todo = Todo.objects.create(title="milk")
        with capture_events() as events:
            with failing("UPDATE"):
                put = self.send("put", f"/api/todos/{todo.pk}", {"done": True})
                patch = self.send("patch", f"/api/todos/{todo.pk}", {"title": "bread"})
            with failing("DELETE"):
                delete = self.send("delete", f"/api/todos/{todo.pk}")
            with failing("SELECT", InterfaceError("connection already closed")):
                locked = self.send("put", f"/api/todos/{todo.pk}", {"done": True})
        for response in (put, patch, delete, locked):
            self.assert_503(response)
        self.assertEqual(list(Todo.objects.values_list("title", "done", "version")), [("milk", False, 1)])
        self.assertEqual(events.actions(), [])

    def test_reads_are_answered_503_too(self) -> None:
        todo = Todo.objects.create(title="milk")
        with failing("SELECT", InterfaceError("connection already closed")):
            self.assert_503(self.send("get", "/api/todos"))
            self.assert_503(self.send("get", f"/api/todos/{todo.pk}"))

    def test_a_signed_in_request_whose_session_or_user_cannot_be_loaded_is_503(self) -> None:
        # SessionMiddleware and AuthenticationMiddleware load lazily: DRF's authentication
        # does it, inside the view, where the handler answers. No middleware is needed.
        self.client.force_login(get_user_model().objects.create_user("alice"))
        for table in ("django_session", "auth_user"):
            with self.subTest(table=table), failing("SELECT", table=table):
                self.assert_503(self.send("get", "/api/todos"))
                self.assert_503(self.send("post", "/api/todos", {"title": "milk"}))
        self.assertEqual(Todo.objects.count(), 0)

    @override_settings(PAINTBRUSH={"DATABASE_RETRY_AFTER_SECONDS": 30})
    def test_retry_after_is_the_setting(self) -> None:
        with failing("INSERT"):
            self.assert_503(self.send("post", "/api/todos", {"title": "milk"}), retry_after="30")

    def test_the_warning_is_one_line_without_a_traceback(self) -> None:
        with self.assertLogs("paintbrush.handlers", "WARNING") as logs, failing("INSERT"):
            self.client.post("/api/todos", {"title": "milk"}, content_type="application/json")
        (record,) = logs.records
        self.assertEqual(record.levelname, "WARNING")
        self.assertIsNone(record.exc_info)
        self.assertEqual(
            record.getMessage(),
            "The database is unavailable (OperationalError: connection failed: Connection refused "
            "Is the server running?); answered 503 to POST /api/todos",
        )

    def test_other_database_errors_are_not_an_outage(self) -> None:
        # A constraint or a bad query is a bug or bad data: retrying cannot help.
        with failing("INSERT", IntegrityError("NOT NULL constraint failed")), self.assertRaises(IntegrityError):
            self.client.post("/api/todos", {"title": "milk"}, content_type="application/json")

    @override_settings(REST_FRAMEWORK=rest_framework(EXCEPTION_HANDLER=f"{__name__}.enveloping_handler"))
    def test_the_projects_exception_handler_renders_the_503_and_keeps_every_other_error(self) -> None:
        with failing("INSERT"):
            response = self.send("post", "/api/todos", {"title": "milk"})
        self.assertEqual((response.status_code, response["Retry-After"]), (503, "5"))
        self.assertEqual(json.loads(response.content), {"error": {"detail": DETAIL}})
        missing = self.client.get("/api/todos/999999")
        self.assertEqual(json.loads(missing.content), {"error": {"detail": "Not found."}})

    @override_settings(REST_FRAMEWORK=rest_framework(EXCEPTION_HANDLER=f"{__name__}.unanswering_handler"))
    def test_a_handler_that_leaves_the_outage_unanswered_falls_back_to_drfs(self) -> None:
        with failing("INSERT"):
            self.assert_503(self.send("post", "/api/todos", {"title": "milk"}))

    @override_settings(REST_FRAMEWORK=rest_framework(EXCEPTION_HANDLER=f"{__name__}.enveloping_handler"))
    def test_under_atomic_requests_the_request_is_rolled_back_not_committed(self) -> None:
        # Committing on the dead connection would fail outside the view: an HTML 500.
        todo = Todo.objects.create(title="milk")
        dead = OperationalError("server closed the connection unexpectedly")
        with (
            mock.patch.dict(connection.settings_dict, {"ATOMIC_REQUESTS": True}),
            mock.patch.object(connection, "commit", side_effect=dead),
            failing("SELECT"),
        ):
            response = self.send("get", f"/api/todos/{todo.pk}")
        self.assertEqual(response.status_code, 503)


class HandlerTests(SimpleTestCase):
    def test_the_project_wide_handler_answers_outages_and_leaves_the_rest_to_drf(self) -> None:
        with self.assertLogs("paintbrush.handlers", "WARNING"):
            response = exception_handler(OperationalError("gone"), {})
        assert response is not None
        self.assertEqual((response.status_code, response["Retry-After"]), (503, "5"))
        self.assertEqual(response.data, {"detail": DETAIL})
        self.assertIsNone(exception_handler(IntegrityError("duplicate"), {}))
        self.assertIsNone(exception_handler(ValueError("bug"), {}))

    def test_database_unavailable_names_its_code(self) -> None:
        self.assertEqual(DatabaseUnavailable().get_codes(), "database_unavailable")

    @override_settings(PAINTBRUSH={"DATABASE_RETRY_AFTER_SECONDS": 0})
    def test_a_retry_after_that_is_not_a_positive_int_is_e005(self) -> None:
        messages = checks.check_settings()
        self.assertEqual([m.id for m in messages], ["paintbrush.E005"])
        self.assertIn("DATABASE_RETRY_AFTER_SECONDS", messages[0].msg)


# -- against a real server and a real PostgreSQL ---------------------------------------------


@dataclass
class Answer:
    """One REST request as a client saw it."""

    phase: str  # "before", "down" or "after": where the test was when it was sent
    title: str
    status: int
    content_type: str
    retry_after: str | None
    body: Any


def request(
    port: int, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, str, str | None, Any]:
    """Status, Content-Type, Retry-After and decoded JSON (None if not JSON) of one request."""
    status, response_headers, data = http_call(
        method, f"http://127.0.0.1:{port}{path}", body, {"Content-Type": "application/json", **(headers or {})}, 30
    )
    return status, response_headers.get("Content-Type", ""), response_headers.get("Retry-After"), data


def manage(db_url: str, *args: str) -> str:
    """``manage.py`` in a subprocess on the private database; its stdout."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings", "DATABASE_URL": db_url}
    env.pop("REDIS_URL", None)
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode:
        raise AssertionError(f"manage.py {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


#: Makes a user and a session for it in the private database; prints the session key.
_SIGN_IN = """
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
user = get_user_model().objects.create_user("outage", password="x")
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.save()
print(session.session_key)
"""


def until_frame(socket: ClientConnection, match: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
    """The first frame ``match`` accepts; the socket must stay open meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        frame: dict[str, Any] = json.loads(socket.recv(timeout=max(0.0, deadline - time.monotonic())))
        if match(frame):
            return frame


def stored_titles(db_url: str) -> list[str]:
    """Every todo's title, read from the database itself, not through the server."""
    import psycopg

    with psycopg.connect(db_url, connect_timeout=10) as connection:
        return [row[0] for row in connection.execute("SELECT title FROM demo_todo")]


@needs_postgres
class PostgresOutageTests(SimpleTestCase):
    WRITERS = 4
    #: How long PostgreSQL stays down.
    DOWN_SECONDS = 4.0

    def setUp(self) -> None:
        self.figures: dict[str, Any] = {}
        self.addCleanup(self.print_figures)

    def print_figures(self) -> None:
        values = " ".join(f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in self.figures.items())
        print(f"\nFAULT-FIGURES db-outage: {values}", flush=True)

    def test_writes_during_a_postgres_outage_get_json_503_and_every_201_is_stored(self) -> None:
        pg = PostgresServer()
        self.addCleanup(pg.close)
        pg.start()
        manage(pg.url, "migrate", "--noinput", "-v", "0")
        session_key = manage(pg.url, "shell", "-c", _SIGN_IN).strip().splitlines()[-1]
        server = ServerProcess(kind="serve", db_url=pg.url)
        self.addCleanup(server.close)
        server.start()

        phase = "before"
        answers: list[Answer] = []
        stop = threading.Event()

        def write(writer: int) -> None:
            n = 0
            while not stop.is_set():
                n += 1
                title, sent_in = f"w{writer}-{n}", phase
                try:
                    status, content_type, retry_after, body = request(
                        server.port, "POST", "/api/todos", {"title": title}
                    )
                except OSError as exc:  # no answer at all: counted, and a failure
                    status, content_type, retry_after, body = 0, "", None, repr(exc)
                answers.append(Answer(sent_in, title, status, content_type, retry_after, body))

        csrf = secrets.token_hex(16)  # 32 characters: a valid unmasked CSRF token
        signed_in = {"Cookie": f"sessionid={session_key}; csrftoken={csrf}", "X-CSRFToken": csrf}

        def probes() -> dict[str, tuple[int, str, str | None, Any]]:
            """A signed-in client: its session and user are loaded from the database."""
            return {
                "GET /api/todos signed in": request(server.port, "GET", "/api/todos", headers=signed_in),
                "POST /api/todos signed in": request(
                    server.port, "POST", "/api/todos", {"title": "probe"}, headers=signed_in
                ),
                "GET /api/doc signed in": request(server.port, "GET", "/api/doc", headers=signed_in),
                "GET /api/todos": request(server.port, "GET", "/api/todos"),
            }

        # A page's socket, open before the outage: an opendoc during it is answered
        # "unavailable" (it used to close the whole socket with 1013), then "resync"
        # once retry_after has passed, and its answer gets the snapshot.
        socket = self.enterContext(ws_connect(server.ws_url, origin=Origin(server.origin), open_timeout=10))
        writers = [threading.Thread(target=write, args=(i,)) for i in range(self.WRITERS)]
        for thread in writers:
            thread.start()
        try:
            self.wait_for(lambda: sum(a.status == 201 for a in answers) >= 20, "writes before the outage")
            phase = "down"
            pg.stop()
            down_until = time.monotonic() + self.DOWN_SECONDS
            time.sleep(0.5)  # the outage itself is what is measured: writes go on meanwhile
            down_probes = probes()
            socket.send(json.dumps({"action": "opendoc", "resource": "todos", "snapshot": True}))
            socket_down = [json.loads(socket.recv(timeout=10)) for _ in range(2)]
            time.sleep(max(0.0, down_until - time.monotonic()))
            pg.start()
            phase = "after"
            self.wait_for(
                lambda: sum(a.status == 201 for a in answers if a.phase == "after") >= 20, "writes after the outage"
            )
        finally:
            stop.set()
            for thread in writers:
                thread.join(60)
        up_probes = probes()
        socket_after = until_frame(socket, lambda f: f.get("type") == "resync", timeout=30)
        socket.send(json.dumps({"action": "opendoc", "resource": "todos", "snapshot": True}))
        snapshot = until_frame(socket, lambda f: f.get("action") == "snapshot" and not f.get("more"), timeout=30)

        statuses = Counter(a.status for a in answers)
        by_phase = {p: dict(Counter(a.status for a in answers if a.phase == p)) for p in ("before", "down", "after")}
        stored = Counter(stored_titles(pg.url))
        created = {a.title for a in answers if a.status == 201}
        unavailable = [a for a in answers if a.status == 503]
        self.figures.update(
            writes=len(answers),
            **{str(code): statuses.get(code, 0) for code in (201, 503, 500)},
            other=sum(n for code, n in statuses.items() if code not in {201, 500, 503}),
            html=sum("text/html" in a.content_type for a in answers),
            by_phase=by_phase,
            lost_201=len(created - set(stored)),
            stored_after_503=sum(1 for a in unavailable if a.title in stored),
            probes_down={name: answer[0] for name, answer in down_probes.items()},
            socket_down=[f.get("error", f.get("type")) for f in socket_down],
        )

        bad = [a for a in answers if a.status not in {201, 503}]
        self.assertEqual(bad[:3], [], f"{len(bad)} answers neither 201 nor 503\n{server.log_tail()}")
        self.assertGreater(len(unavailable), 0, "no write saw the outage")
        for a in unavailable[:50]:
            self.assert_unavailable(a.status, a.content_type, a.retry_after, a.body)
        self.assertEqual(created - set(stored), set(), "answered 201 but not in the database")
        self.assertEqual([t for t, n in stored.items() if n > 1], [], "a write stored twice")
        self.assertEqual({t for t in stored if t != "probe"} - {a.title for a in answers}, set())
        self.assertEqual({a.status for a in answers if a.phase == "after"}, {201}, by_phase)
        for name, (status, content_type, retry_after, body) in down_probes.items():
            with self.subTest(probe=name):
                self.assert_unavailable(status, content_type, retry_after, body)
        self.assertEqual(up_probes["GET /api/todos signed in"][0], 200)
        self.assertEqual(up_probes["POST /api/todos signed in"][0], 201, up_probes["POST /api/todos signed in"])
        self.assertEqual(up_probes["GET /api/todos"][0], 200)
        self.assertEqual(socket_down[0], {"type": "opened", "resource": "todos"})
        self.assertEqual((socket_down[1]["type"], socket_down[1]["error"]), ("error", "unavailable"), socket_down)
        self.assertGreater(socket_down[1]["retry_after"], 0)
        self.assertEqual(socket_after["resource"], "todos")
        self.assertGreater(len(snapshot["items"]), 20)  # the socket stayed open throughout
        # The probes were signed in: without its CSRF token, the session's write is refused.
        no_token = {"Cookie": f"sessionid={session_key}"}
        self.assertEqual(request(server.port, "POST", "/api/todos", {"title": "x"}, headers=no_token)[0], 403)

    def assert_unavailable(self, status: int, content_type: str, retry_after: str | None, body: Any) -> None:
        self.assertEqual((status, content_type), (503, "application/json"), body)
        self.assertEqual(body, {"detail": DETAIL})
        self.assertIsNotNone(retry_after)
        assert retry_after is not None
        self.assertGreater(int(retry_after), 0)

    @staticmethod
    def wait_for(condition: Any, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {timeout} s")
            time.sleep(0.05)
