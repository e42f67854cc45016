"""
The README's "Add Paintbrush to your project", followed as a new user follows it: a
throwaway project is built from the README's own code blocks (never copies of them),
checked, served by Daphne, and a socket subscribed to it receives the event of a change.
The roles of "Declaring roles" are added to it the same way, and their documents are
served on ``GET /api/doc`` and pushed on ``/ws/doc`` after a change.

A block the test takes is marked by the comment before it:

    <!-- commands -->                                 run each line, in the project directory
    <!-- file: myproject/settings.py (append) -->     add to the end of the file
    <!-- file: myproject/asgi.py (replace) -->        the whole file, which exists already
    <!-- file: myapp/live.py (create) -->             a new file
    <!-- file: myapp/live.py (append) -->             (Declaring roles) the roles, after it
    <!-- file: myproject/settings.py (append, redis) -->  only in the Redis variant

Paintbrush is importable in the project through ``PYTHONPATH`` (a directory holding a
link to this checkout's ``paintbrush``), as if installed. The Redis variant runs when
``PAINTBRUSH_TEST_REDIS_URL`` names a Redis server.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import unittest
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.test import SimpleTestCase
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin

import paintbrush
from paintbrush.testing import DocumentReplica
from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
REDIS_URL = os.environ.get("PAINTBRUSH_TEST_REDIS_URL")
if not REDIS_URL and os.environ.get("CI"):
    raise RuntimeError("CI must provide PAINTBRUSH_TEST_REDIS_URL (a Redis server) for the README's Redis block.")
#: The Redis address the README's block names; the test's server takes its place.
README_REDIS_ADDRESS = "redis://127.0.0.1:6379/0"
USER, PASSWORD = "admin", "a-password-for-the-test"

_BLOCK = re.compile(
    r"^<!-- (?:(?P<commands>commands)|file: (?P<path>\S+) \((?P<how>[^)]*)\)) -->\n```\w*\n(?P<body>.*?)^```$",
    re.MULTILINE | re.DOTALL,
)


@dataclass(frozen=True)
class Step:
    """One marked block of the README."""

    body: str
    path: str | None = None  # None: commands
    action: str = ""  # append, replace or create
    variant: str | None = None


def readme_steps(text: str) -> list[Step]:
    steps = []
    for match in _BLOCK.finditer(text):
        if match["commands"]:
            steps.append(Step(match["body"]))
            continue
        action, _, variant = (part.strip() for part in match["how"].partition(","))
        if action not in {"append", "replace", "create"}:
            raise ValueError(f"README: unknown action {action!r} for {match['path']}")
        steps.append(Step(match["body"], match["path"], action, variant or None))
    return steps


def _command(line: str) -> list[str] | None:
    """A README command line as the test runs it; None for the ones it replaces."""
    words = shlex.split(line, comments=True)
    if not words:
        return None
    if words[0] == "django-admin":
        return [sys.executable, "-m", "django", *words[1:]]
    if words[:2] != ["python", "manage.py"]:
        raise AssertionError(f"README: a command the test cannot run: {line!r}")
    if words[2] == "runserver":
        return None  # the tests serve the project with Daphne, as production does
    if words[2] == "createsuperuser":
        return [sys.executable, "manage.py", "createsuperuser", "--noinput"]  # DJANGO_SUPERUSER_* below
    return [sys.executable, "manage.py", *words[2:]]


class ReadmeProject:
    """A project built in a temporary directory by following the README."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="paintbrush-readme-"))
        self.dir = self.tmp / "project"
        self.dir.mkdir()
        site = self.tmp / "site"
        site.mkdir()
        (site / "paintbrush").symlink_to(ROOT / "paintbrush")
        # The user's environment, not the demo's: no DJANGO_SETTINGS_MODULE, no test
        # settings of this suite.
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("DJANGO_", "PAINTBRUSH_")) and key not in {"DATABASE_URL", "REDIS_URL"}
        }
        self.env |= {
            "PYTHONPATH": str(site),
            "DJANGO_SUPERUSER_USERNAME": USER,
            "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
            "DJANGO_SUPERUSER_EMAIL": "admin@example.com",
        }
        self.outputs: dict[str, str] = {}
        self.variants: dict[str, list[Step]] = {}

    def build(self, steps: list[Step]) -> None:
        for step in steps:
            if step.variant:
                self.variants.setdefault(step.variant, []).append(step)
            elif step.path is None:
                for line in step.body.splitlines():
                    command = _command(line)
                    if command is not None:
                        self.outputs[line.split("#")[0].strip()] = self.run(command)
            else:
                self.write(step, self.dir / step.path)

    def write(self, step: Step, target: Path) -> None:
        exists = target.exists()
        if exists != (step.action in {"append", "replace"}):
            raise AssertionError(f"README: {step.action} {step.path}, which {'exists' if exists else 'does not exist'}")
        if step.action == "append":
            with target.open("a") as file:
                file.write(f"\n\n{step.body}")
        else:
            target.write_text(step.body)

    def run(self, command: list[str], settings: str | None = None) -> str:
        env = self.env | ({"DJANGO_SETTINGS_MODULE": settings} if settings else {})
        done = subprocess.run(command, cwd=self.dir, env=env, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode:
            raise AssertionError(f"{shlex.join(command[1:])} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout + done.stderr

    def settings_variant(self, variant: str, substitute: dict[str, str] | None = None, extra: str = "") -> str:
        """A settings module: myproject/settings.py with the variant's blocks appended
        (``substitute``: text replaced in them, each of which must occur)."""
        text = (self.dir / "myproject" / "settings.py").read_text()
        for step in self.variants[variant]:
            body = step.body
            for old, new in (substitute or {}).items():
                assert old in body, f"README: the {variant} block no longer holds {old!r}"
                body = body.replace(old, new)
            text += f"\n\n{body}"
        text += extra
        (self.dir / "myproject" / f"settings_{variant}.py").write_text(text)
        return f"myproject.settings_{variant}"

    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


class Server:
    """``python -m daphne myproject.asgi:application`` in the project, on a free port."""

    def __init__(self, project: ReadmeProject, settings: str | None = None) -> None:
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.log = project.tmp / f"daphne-{self.port}.log"
        env = project.env | ({"DJANGO_SETTINGS_MODULE": settings} if settings else {})
        app = "myproject.asgi:application"
        command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), app]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(command, cwd=project.dir, env=env, stdout=log, stderr=subprocess.STDOUT)
        jar = http.cookiejar.CookieJar()
        self.jar = jar
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        deadline = time.monotonic() + 20
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise AssertionError(f"Daphne did not start:\n{self.log.read_text()}")
            time.sleep(0.1)

    def _answers(self) -> bool:
        try:
            self.request("GET", "/admin/login/")
        except OSError:
            return False
        return True

    def request(self, method: str, path: str, data: bytes | None = None, **headers: str) -> tuple[int, bytes]:
        request = urllib.request.Request(self.origin + path, data=data, method=method, headers=headers)
        try:
            with self.opener.open(request, timeout=10) as response:
                return int(response.status), response.read()
        except urllib.error.HTTPError as error:
            with error:
                return error.code, error.read()

    def cookie(self, name: str) -> str:
        return next(c.value or "" for c in self.jar if c.name == name)

    def sign_in(self) -> None:
        """Through the admin's login form, as the README says."""
        self.request("GET", "/admin/login/")  # sets csrftoken
        form = {"username": USER, "password": PASSWORD, "csrfmiddlewaretoken": self.cookie("csrftoken")}
        status, _ = self.request("POST", "/admin/login/?next=/admin/", urllib.parse.urlencode(form).encode())
        assert status == 200 and any(c.name == "sessionid" for c in self.jar), f"sign-in failed: {status}"

    def socket(self, path: str = "/ws", cookies: str | None = None) -> ClientConnection:
        """A socket with the session of this server's cookie jar, or of ``cookies``."""
        if cookies is None:
            cookies = "; ".join(f"{c.name}={c.value}" for c in self.jar)
        return connect(
            f"ws://127.0.0.1:{self.port}{path}",
            origin=Origin(self.origin),
            additional_headers={"Cookie": cookies},
            open_timeout=10,
        )

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def receive_first(
    socket: ClientConnection, matches: Callable[[Any], bool], what: str, timeout: float = 10
) -> dict[str, Any]:
    """The first message for which ``matches`` holds (``what``: it, for the failure)."""
    seen = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = json.loads(socket.recv(timeout=left))
        except TimeoutError:
            break
        if matches(message):
            return dict(message)
        seen.append(message)
    raise AssertionError(f"no {what} within {timeout} s; got {seen}")


def _holds(message: Any, want: Any) -> bool:
    if isinstance(want, dict):
        return isinstance(message, dict) and all(_holds(message.get(k), v) for k, v in want.items())
    return bool(message == want)


def receive(socket: ClientConnection, wanted: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
    """The first message holding every key/value of ``wanted`` (nested dicts: a subset)."""
    return receive_first(socket, lambda message: _holds(message, wanted), f"message with {wanted}", timeout)


def receive_doc(
    socket: ClientConnection,
    wanted: Callable[[dict[str, Any]], bool],
    timeout: float = 10,
    replica: DocumentReplica | None = None,
) -> dict[str, Any]:
    """The first role document pushed on ``/ws/doc`` for which ``wanted`` holds; with
    ``replica``, the socket takes patches (``/ws/doc?patch=1``) and it applies them."""

    def matches(message: Any) -> bool:
        if message.get("type") != "doc" or message.get("resource") != "doc":
            return False
        return bool(wanted(message["doc"] if replica is None else replica.take(message)))

    frame = receive_first(socket, matches, "such document", timeout)
    return dict(frame["doc"] if replica is None else replica.doc)


def titles(doc: dict[str, Any]) -> dict[str, bool]:
    """A document's todos: title -> done."""
    return {todo["title"]: todo["done"] for todo in doc["todos"]}


class ReadmeProjectTests(SimpleTestCase):
    steps: list[Step]
    project: ReadmeProject

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.steps = readme_steps(README.read_text())
        cls.project = ReadmeProject()
        cls.addClassCleanup(cls.project.close)
        cls.project.build(cls.steps)

    def serve(self, settings: str | None = None) -> Server:
        server = Server(self.project, settings)
        self.addCleanup(server.close)
        return server

    def test_the_readme_marks_every_block_a_project_needs(self) -> None:
        files = {(s.path, s.action, s.variant) for s in self.steps if s.path}
        self.assertEqual(
            files,
            {
                ("myproject/settings.py", "append", None),
                ("myproject/asgi.py", "replace", None),
                ("myproject/urls.py", "replace", None),
                ("myapp/models.py", "replace", None),
                ("myapp/live.py", "create", None),
                ("myapp/live.py", "append", None),
                ("myproject/settings.py", "append", "redis"),
            },
        )
        self.assertIn("python manage.py check", self.project.outputs)

    def test_check_reports_no_issues(self) -> None:
        self.assertIn("System check identified no issues", self.project.outputs["python manage.py check"])
        # And with the roles, which the README adds after its "Run it".
        output = self.project.run([sys.executable, "manage.py", "check"])
        self.assertIn("System check identified no issues", output)

    def test_the_redis_block_passes_check_too(self) -> None:
        settings = self.project.settings_variant("redis")
        output = self.project.run([sys.executable, "manage.py", "check"], settings=settings)
        self.assertIn("System check identified no issues", output)

    def test_a_change_made_through_rest_reaches_a_subscribed_socket(self) -> None:
        server = self.serve()
        server.sign_in()
        with server.socket() as socket:
            socket.send(json.dumps({"action": "opendoc", "resource": "todos"}))
            receive(socket, {"type": "opened", "resource": "todos"})
            title = f"from REST {uuid.uuid4()}"
            status, body = server.request(
                "POST",
                "/api/todos",
                json.dumps({"title": title}).encode(),
                **{"Content-Type": "application/json", "X-CSRFToken": server.cookie("csrftoken")},
            )
            self.assertEqual(status, 201, body)
            event = receive(socket, {"resource": "todos", "action": "create", "item": {"title": title}})
        self.assertEqual(event["item"]["version"], 1)

    def test_a_scope_of_the_readme_s_todos_holds_the_open_ones(self) -> None:
        # The README declares todos with scope_fields=["done"].
        server = self.serve()
        server.sign_in()
        headers = {"Content-Type": "application/json", "X-CSRFToken": server.cookie("csrftoken")}
        with server.socket() as socket:
            socket.send(json.dumps({"action": "opendoc", "resource": "todos", "where": {"done": False}}))
            receive(socket, {"type": "opened", "resource": "todos", "where": {"done": False}})
            title = f"open {uuid.uuid4()}"
            status, body = server.request("POST", "/api/todos", json.dumps({"title": title}).encode(), **headers)
            self.assertEqual(status, 201, body)
            created = receive(socket, {"action": "create", "item": {"title": title}})
            self.assertEqual(created["where"], {"done": False})
            todo_id = created["item"]["id"]
            status, body = server.request(
                "PUT", f"/api/todos/{todo_id}", json.dumps({"done": True}).encode(), **headers
            )
            self.assertEqual(status, 200, body)
            left = receive(socket, {"action": "delete", "id": todo_id})
            self.assertEqual(left["where"], {"done": False})  # checked off: it left the open scope

    def test_the_role_documents_are_served_and_pushed_after_a_change(self) -> None:
        server = self.serve()
        server.sign_in()  # the superuser: staff
        # A member (any other signed-in user) and a session of theirs, made in the shell:
        # the README's project signs in staff only (the admin's form).
        member = f"member-{uuid.uuid4().hex[:8]}"
        code = (
            "from django.contrib.auth import get_user_model; from django.test import Client; "
            f"user = get_user_model().objects.create_user({member!r}); client = Client(); "
            'client.force_login(user); print("session=" + client.cookies["sessionid"].value)'
        )
        output = self.project.run([sys.executable, "manage.py", "shell", "-c", code])
        match = re.search(r"^session=(\S+)$", output, re.MULTILINE)
        assert match is not None, output
        member_cookie = f"sessionid={match[1]}"

        def api_doc(cookie: str | None = None) -> dict[str, Any]:
            headers = {"Cookie": cookie} if cookie else {}
            status, body = server.request("GET", "/api/doc", None, **headers)
            self.assertEqual(status, 200, body)
            return dict(json.loads(body))

        def write(method: str, path: str, data: dict[str, Any]) -> dict[str, Any]:
            headers = {"Content-Type": "application/json", "X-CSRFToken": server.cookie("csrftoken")}
            status, body = server.request(method, path, json.dumps(data).encode(), **headers)
            self.assertIn(status, {200, 201}, body)
            return dict(json.loads(body))

        replica = DocumentReplica()  # the member's socket takes patches
        with server.socket("/ws/doc") as staff, server.socket("/ws/doc?patch=1", member_cookie) as mine:
            # At once: each user's document, the one GET /api/doc answers.
            doc = receive_doc(staff, lambda doc: True)
            self.assertEqual(doc["role"], "staff")
            self.assertEqual(set(doc), {"role", "todos", "users"})
            self.assertLessEqual({USER, member}, {user["username"] for user in doc["users"]})
            self.assertEqual(api_doc(), doc)
            own = receive_doc(mine, lambda doc: True, replica=replica)
            self.assertEqual(own["role"], "member")
            self.assertEqual(set(own), {"role", "user", "todos"})
            self.assertEqual(own["user"]["username"], member)
            self.assertFalse(own["user"]["is_staff"])
            self.assertNotIn(True, titles(own).values())  # members: the todos still to do
            self.assertEqual(api_doc(member_cookie), own)

            # A todo made through REST reaches both documents, rendered as REST renders it.
            title = f"for the documents {uuid.uuid4()}"
            todo = write("POST", "/api/todos", {"title": title})
            doc = receive_doc(staff, lambda doc: title in titles(doc))
            self.assertIn(todo, doc["todos"])
            own = receive_doc(mine, lambda doc: title in titles(doc), replica=replica)
            self.assertIn(todo, own["todos"])

            # Done: still in the staff document, gone from the member's.
            done = write("PATCH", f"/api/todos/{todo['id']}", {"done": True})
            doc = receive_doc(staff, lambda doc: titles(doc).get(title) is True)
            self.assertIn(done, doc["todos"])
            own = receive_doc(mine, lambda doc: title not in titles(doc), replica=replica)
            self.assertEqual(api_doc(), doc)
            self.assertEqual(api_doc(member_cookie), own)
            self.assertEqual(replica.wholes, 1)  # then patches only: the todo, then done
            self.assertGreaterEqual(replica.patches, 2)

    @unittest.skipUnless(REDIS_URL, "set PAINTBRUSH_TEST_REDIS_URL to follow the README's Redis block")
    def test_with_redis_a_change_made_in_the_shell_reaches_a_socket(self) -> None:
        assert REDIS_URL is not None
        # A prefix of its own, so that other runs sharing the Redis server are not heard.
        prefix = f'\nCHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = "pbreadme{uuid.uuid4().hex[:8]}"\n'
        settings = self.project.settings_variant("redis", {README_REDIS_ADDRESS: REDIS_URL}, prefix)
        server = self.serve(settings)
        server.sign_in()
        with server.socket() as socket:
            socket.send(json.dumps({"action": "opendoc", "resource": "todos"}))
            receive(socket, {"type": "opened", "resource": "todos"})
            title = f"from the shell {uuid.uuid4()}"
            code = f"from myapp.models import Todo; Todo.objects.create(title={title!r})"
            self.project.run([sys.executable, "manage.py", "shell", "-c", code], settings=settings)
            receive(socket, {"resource": "todos", "action": "create", "item": {"title": title}})


class PackageTests(SimpleTestCase):
    def test_the_version_has_one_place_and_a_changelog_entry(self) -> None:
        with (ROOT / "pyproject.toml").open("rb") as file:
            version = tomllib.load(file)["project"]["version"]
        self.assertEqual(paintbrush.__version__, version)
        release = re.match(r"\d+\.\d+\.\d+", version)
        assert release is not None
        self.assertIn(f"\n## {release.group()} ", (ROOT / "CHANGELOG.md").read_text())

    def test_the_readme_s_excerpts_are_the_code_they_quote(self) -> None:
        # An excerpt cannot run alone (it names the demo's models): its lines must be
        # the quoted file's own, in order, so that the suite runs them there.
        blocks = re.findall(r"^<!-- excerpt: (\S+) -->\n```\w*\n(.*?)^```$", README.read_text(), re.M | re.S)
        self.assertTrue(blocks)
        for path, body in blocks:
            source = [_code(line) for line in (ROOT / path).read_text().splitlines()]
            position = 0
            for line in filter(None, map(_code, body.splitlines())):
                self.assertIn(line, source[position:], f"{path}: {line!r} is not there (after line {position})")
                position = source.index(line, position) + 1

    def test_the_readme_lists_every_check_id(self) -> None:
        code = set(re.findall(r'id="(paintbrush\.[EW]\d{3})"', (ROOT / "paintbrush" / "checks.py").read_text()))
        section = README.read_text().split("### Mistakes are system checks", 1)[1].split("\n## ", 1)[0]
        self.assertEqual(set(re.findall(r"^\| `(paintbrush\.[EW]\d{3})` \|", section, re.MULTILINE)), code)


def _code(line: str) -> str:
    """A line without its comment and surrounding blanks (comments may differ)."""
    return line.split("  #", 1)[0].split("# ", 1)[0].strip() if not line.strip().startswith("#") else ""
