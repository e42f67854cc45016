"""The demo as a user sees it: real headless Chromium against a live Daphne server.

Two pages on /todos/: add a todo in one, it appears in the other without reload;
toggle it in the other, the first sees it; change it in the Django admin, both see it.
"""

from __future__ import annotations

import unittest
from typing import Any

from channels.testing import ChannelsLiveServerTestCase
from django.contrib.auth import get_user_model
from django.test import override_settings

from .browser import AVAILABLE, new_driver
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
