"""The demo as a user sees it: real headless Chromium against a live Daphne server.

Two pages on /todos/: add a todo in one, it appears in the other without reload;
toggle it in the other, the first sees it; change it in the Django admin, both see it.
``ServedAsInProductionTests`` does the same against ``scripts/serve`` (uvicorn and
WhiteNoise, debug off) run as a subprocess, as production runs it.
"""

from __future__ import annotations

import http.client
import re
import unittest
from typing import Any

from channels.testing import ChannelsLiveServerTestCase
from django.contrib.auth import get_user_model
from django.test import TransactionTestCase, override_settings

from .browser import AVAILABLE, new_driver, websocket_frames
from .servers import ServerProcess
from .utils import IN_MEMORY

WAIT = 15


@unittest.skipUnless(AVAILABLE, "needs chromium and chromedriver (scripts/test installs them)")
@override_settings(CHANNEL_LAYERS=IN_MEMORY)
class BrowserTestCase(ChannelsLiveServerTestCase):
    """A live Daphne server and any number of headless browsers, closed after each test."""

    serve_static = True

    def setUp(self) -> None:
        super().setUp()
        self.drivers: list[Any] = []

    def tearDown(self) -> None:
        for driver in self.drivers:
            driver.quit()
        super().tearDown()

    def browser(self) -> Any:
        driver = new_driver()
        self.drivers.append(driver)
        return driver

    def wait(self, driver: Any, condition: Any, message: str) -> Any:
        # WebDriverWait polls the page: the DOM offers the test no event to await.
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(driver, WAIT).until(condition, message)

    def wait_live(self, driver: Any) -> None:
        self.wait(driver, lambda d: d.find_element("id", "conn").text == "live", "socket never went live")


class TodosInTwoBrowsersTests(BrowserTestCase):
    def open_todos(self) -> Any:
        driver = self.browser()
        driver.get(f"{self.live_server_url}/todos/")
        self.wait_live(driver)
        return driver

    def add_todo(self, driver: Any, title: str) -> None:
        driver.find_element("css selector", "form#create input[name=title]").send_keys(title)
        driver.find_element("css selector", "form#create button").click()

    def row(self, driver: Any, title: str) -> Any:
        for li in driver.find_elements("css selector", "#items li[data-id]"):
            if li.find_element("css selector", ".title").text == title:
                return li
        return None

    def test_two_pages_and_the_admin_stay_in_sync(self) -> None:
        first, second = self.open_todos(), self.open_todos()

        # Add in the first page: it appears in the second without a reload.
        self.add_todo(first, "Buy milk")
        row = self.wait(second, lambda d: self.row(d, "Buy milk"), "the new todo never reached page two")
        todo_id = row.get_attribute("data-id")
        self.wait(first, lambda d: self.row(d, "Buy milk"), "the writer's own page never showed it")

        # Toggle in the second page: the first sees it checked.
        self.assertFalse(row.find_element("css selector", "input[type=checkbox]").is_selected())
        row.find_element("css selector", "input[type=checkbox]").click()
        self.wait(
            first,
            lambda d: self.row(d, "Buy milk").find_element("css selector", "input[type=checkbox]").is_selected(),
            "the toggle never reached page one",
        )

        # Change it in the Django admin: both pages see the new title.
        get_user_model().objects.create_superuser("root", "root@example.com", "root-pw")
        admin = self.browser()
        admin.get(f"{self.live_server_url}/admin/login/?next=/admin/demo/todo/{todo_id}/change/")
        admin.find_element("name", "username").send_keys("root")
        admin.find_element("name", "password").send_keys("root-pw")
        admin.find_element("css selector", "input[type=submit]").click()
        title = self.wait(admin, lambda d: d.find_element("name", "title"), "admin change form did not open")
        title.clear()
        title.send_keys("Buy oat milk")
        admin.find_element("name", "_save").click()
        for page in (first, second):
            self.wait(page, lambda d: self.row(d, "Buy oat milk"), "the admin's change never reached a page")
            self.assertIsNone(self.row(page, "Buy milk"))

    def test_a_change_rerenders_only_that_row_and_titles_are_text(self) -> None:
        page, other = self.open_todos(), self.open_todos()
        for title in ("one", "<img src=x onerror=window.pwned=1>"):
            self.add_todo(other, title)
            self.wait(page, lambda d, t=title: self.row(d, t), f"{title!r} never arrived")
        hostile = self.row(page, "<img src=x onerror=window.pwned=1>")
        self.assertEqual(hostile.find_elements("css selector", "img"), [])
        self.assertIsNone(page.execute_script("return window.pwned"))

        # Keep references to both rows' elements, then toggle "one" elsewhere.
        page.execute_script("window.kept = [...document.querySelectorAll('#items li[data-id]')];")
        self.row(other, "one").find_element("css selector", "input[type=checkbox]").click()
        self.wait(
            page,
            lambda d: self.row(d, "one").find_element("css selector", "input[type=checkbox]").is_selected(),
            "the toggle never arrived",
        )
        same = page.execute_script(
            "const now = [...document.querySelectorAll('#items li[data-id]')];"
            "return now.length === kept.length && now.every((el, i) => el === kept[i]);"
        )
        self.assertTrue(same, "an update replaced list elements instead of patching one row")


class ShopInTwoBrowsersTests(BrowserTestCase):
    def setUp(self) -> None:
        super().setUp()
        from decimal import Decimal

        from project.demo.models import Product

        User = get_user_model()
        User.objects.create_user("admin", "admin@example.com", "admin-pw", is_staff=True)
        User.objects.create_user("alice", "alice@example.com", "alice-pw")
        self.product = Product.objects.create(name="Brush", price=Decimal("9.99"))

    def signed_in(self, username: str, password: str, page: str) -> Any:
        driver = self.browser()
        driver.get(f"{self.live_server_url}{page}")
        # Signed out: the shop pages send us to the sign-in page first.
        self.assertIn("/accounts/login/", driver.current_url)
        driver.find_element("name", "username").send_keys(username)
        driver.find_element("name", "password").send_keys(password)
        driver.find_element("css selector", "form.login button").click()
        self.wait(driver, lambda d: d.current_url.endswith(page), f"{username} was not sent back to {page}")
        self.wait_live(driver)
        return driver

    def status_cell(self, driver: Any, order_id: str) -> Any:
        rows = driver.find_elements("css selector", f'#orders tr[data-id="{order_id}"]')
        return rows[0] if rows else None

    def test_alice_orders_the_admin_sees_it_ships_it_and_alice_sees_that(self) -> None:
        alice = self.signed_in("alice", "alice-pw", "/shop/")
        admin = self.signed_in("admin", "admin-pw", "/shop/admin/")
        self.wait(alice, lambda d: d.find_elements("css selector", "#products tr[data-id]"), "no catalog")
        self.assertEqual(admin.find_elements("css selector", "#orders tr[data-id]"), [])

        alice.find_element("css selector", f'button.order[data-product="{self.product.pk}"]').click()
        row = self.wait(
            admin, lambda d: d.find_elements("css selector", "#orders tr[data-id]"), "the order never reached the admin"
        )[0]
        order_id = row.get_attribute("data-id")
        self.assertEqual(row.find_element("css selector", ".customer").text, "alice")
        self.wait(alice, lambda d: self.status_cell(d, order_id), "alice's own page never showed her order")
        self.assertEqual(self.status_cell(alice, order_id).find_element("css selector", ".status").text, "pending")

        from selenium.webdriver.support.ui import Select

        Select(row.find_element("css selector", "select[name=status]")).select_by_value("shipped")
        self.wait(
            alice,
            lambda d: self.status_cell(d, order_id).find_element("css selector", ".status").text == "shipped",
            "the shipment never reached alice",
        )
        # Both pages asked for patches and were sent them: the document whole once, then
        # each change as a JSON Patch (protocol section 2c).
        for driver in (alice, admin):
            frames = websocket_frames(driver)
            self.assertIn(("sent", {"action": "opendoc", "resource": "doc", "patch": True}), frames)
            docs = [frame for direction, frame in frames if direction == "received" and frame.get("type") == "doc"]
            self.assertEqual(["doc" in frame for frame in docs][:1], [True])
            patches = [frame for frame in docs if "patch" in frame]
            self.assertGreaterEqual(len(patches), 2)  # the order, then its shipment
            self.assertEqual([frame["rev"] for frame in docs], list(range(docs[0]["rev"], docs[0]["rev"] + len(docs))))


class OpsPageTests(BrowserTestCase):
    def test_the_ops_page_plots_the_server_s_sockets_and_events_as_they_happen(self) -> None:
        get_user_model().objects.create_user("ops", "ops@example.com", "ops-pw", is_staff=True)
        page = self.browser()
        page.get(f"{self.live_server_url}/ops/")
        self.assertIn("/accounts/login/", page.current_url)  # staff only: sign in first
        page.find_element("name", "username").send_keys("ops")
        page.find_element("name", "password").send_keys("ops-pw")
        page.find_element("css selector", "form.login button").click()
        self.wait(page, lambda d: d.current_url.endswith("/ops/"), "ops was not sent back to /ops/")
        self.wait_live(page)

        # The page's own socket is among the server's sockets.
        self.wait(page, lambda d: int(d.find_element("id", "sockets").text or 0) >= 1, "no socket was counted")
        self.wait(page, lambda d: d.find_element("id", "events").text.isdigit(), "no events counter")
        before = int(page.find_element("id", "events").text)

        # Three todos through REST, from the page (the import map's client, the page's CSRF cookie).
        done = page.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "import('paintbrush').then(({ createItem }) =>"
            "  Promise.all([1, 2, 3].map((i) => createItem('todos', { title: `ops ${i}` }))))"
            "  .then(() => done('ok'), (err) => done(String(err)));"
        )
        self.assertEqual(done, "ok")
        self.wait(
            page,
            lambda d: int(d.find_element("id", "events").text) >= before + 3,
            "the events counter never rose by the three writes",
        )
        self.wait(
            page,
            lambda d: float(d.find_element("id", "plot-events").get_attribute("data-max") or 0) > 0,
            "the events/s plot never rose",
        )
        self.assertGreaterEqual(int(page.find_element("id", "plot-sockets").get_attribute("data-max")), 1)


@unittest.skipUnless(AVAILABLE, "needs chromium and chromedriver (scripts/test installs them)")
class ServedAsInProductionTests(TransactionTestCase):
    """The demo under ``scripts/serve`` (collectstatic, then uvicorn with WhiteNoise),
    debug off and a secret key of its own, sharing this test's database through
    ``DATABASE_URL``: the client modules load through the import map, and a todo added
    in one window appears in another without a reload."""

    def setUp(self) -> None:
        # One process and the in-memory layer: both windows' sockets and the REST writes
        # meet in it (several workers need REDIS_URL, see the README's production section).
        self.server = ServerProcess(
            kind="serve",
            env={"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "served-as-in-production-" + "x" * 40},
        )
        self.addCleanup(self.server.close)
        self.server.start(timeout=60)  # collectstatic runs first
        self.drivers: list[Any] = []
        self.addCleanup(self.quit_drivers)

    def quit_drivers(self) -> None:
        for driver in self.drivers:
            driver.quit()

    def wait(self, driver: Any, condition: Any, message: str) -> Any:
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(driver, WAIT).until(condition, f"{message}\n{self.server.log_tail()}")

    def open_todos(self) -> Any:
        driver = new_driver()
        self.drivers.append(driver)
        driver.get(self.server.url("/todos/"))
        self.wait(driver, lambda d: d.find_element("id", "conn").text == "live", "the socket never went live")
        return driver

    def severe_console_entries(self, driver: Any) -> list[dict[str, Any]]:
        # Chromium asks for /favicon.ico on its own; the demo has none.
        return [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and "favicon.ico" not in e["message"]]

    def row(self, driver: Any, title: str) -> Any:
        for li in driver.find_elements("css selector", "#items li[data-id]"):
            if li.find_element("css selector", ".title").text == title:
                return li
        return None

    def get(self, path: str, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        self.addCleanup(connection.close)
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        response.read()
        return response

    def test_the_demo_under_scripts_serve_loads_its_modules_and_syncs_two_windows(self) -> None:
        first, second = self.open_todos(), self.open_todos()

        # The import map's modules came from WhiteNoise, and nothing failed to load.
        loaded = first.execute_script(
            "return performance.getEntriesByType('resource').map((e) => new URL(e.name).pathname);"
        )
        for path in ("/static/paintbrush/index.js", "/static/paintbrush/live.js", "/static/demo/live-list.js"):
            self.assertIn(path, loaded)
        for page in (first, second):
            self.assertEqual(self.severe_console_entries(page), [])

        # Add in the first window: the second shows it without a reload.
        first.find_element("css selector", "form#create input[name=title]").send_keys("Ship it")
        first.find_element("css selector", "form#create button").click()
        self.wait(second, lambda d: self.row(d, "Ship it"), "the new todo never reached the second window")
        self.wait(first, lambda d: self.row(d, "Ship it"), "the writer's own window never showed it")
        self.assertEqual(len(second.find_elements("css selector", "#items li[data-id]")), 1)
        for page in (first, second):
            self.assertEqual(self.severe_console_entries(page), [])

        # WhiteNoise's headers on a static file: cacheable, and revalidated with a 304.
        # Its names are not hashed (the demo keeps Django's default storage), for which
        # WhiteNoise gives a short max-age (60 s), not a year: nothing to assert there.
        static = self.get("/static/paintbrush/index.js")
        self.assertEqual(static.status, 200)
        self.assertIn("javascript", static.headers["Content-Type"])
        cache_control = static.headers["Cache-Control"] or ""
        max_age = re.search(r"max-age=(\d+)", cache_control)
        self.assertIsNotNone(max_age, cache_control)
        assert max_age is not None
        self.assertGreater(int(max_age.group(1)), 0)
        self.assertIn("public", cache_control)
        etag = static.headers["ETag"]
        self.assertTrue(etag)
        self.assertEqual(self.get("/static/paintbrush/index.js", {"If-None-Match": etag}).status, 304)

        # Debug is off: a missing page is a plain 404, never Django's technical page.
        missing = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        self.addCleanup(missing.close)
        missing.request("GET", "/no-such-page/")
        response = missing.getresponse()
        self.assertEqual(response.status, 404)
        self.assertNotIn(b"URLconf", response.read())
