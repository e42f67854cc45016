"""The demo chat (docs/protocol.md, section 4) in headless Chromium: the Django Channels
tutorial's part-4 scenarios (one room's windows see each other's messages, another
room's do not), signed in, on pages with the tutorial's element ids; the last 50
messages on entering; a member removed while watching sees the room close."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model

from project.demo.models import Membership, Message, Room

from .test_browser import BrowserTestCase

User = get_user_model()


class ChatTests(BrowserTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.alice = User.objects.create_user("alice", "alice@example.com", "alice-pw")
        self.driver = self.signed_in_browser("alice", "alice-pw")

    def signed_in_browser(self, username: str, password: str) -> Any:
        driver = self.browser()
        driver.get(f"{self.live_server_url}/chat/")
        self.assertIn("/accounts/login/", driver.current_url)  # the chat is for signed-in users
        driver.find_element("name", "username").send_keys(username)
        driver.find_element("name", "password").send_keys(password)
        driver.find_element("css selector", "form.login button").click()
        self.wait(driver, lambda d: d.current_url.endswith("/chat/"), f"{username} was not sent back to /chat/")
        return driver

    # -- as the tutorial's tests drive the pages ------------------------------------------

    def enter_room(self, name: str) -> None:
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.keys import Keys

        self.driver.get(f"{self.live_server_url}/chat/")
        # The lobby's input has the focus: type the name and press Enter.
        ActionChains(self.driver).send_keys(name, Keys.ENTER).perform()
        self.wait(self.driver, lambda d: f"/chat/{name}/" in d.current_url, f"never entered {name}")
        self.wait_live(self.driver)

    def new_window(self) -> None:
        self.driver.execute_script('window.open("about:blank", "_blank");')
        self.driver.switch_to.window(self.driver.window_handles[-1])

    def window(self, index: int) -> None:
        self.driver.switch_to.window(self.driver.window_handles[index])

    def post(self, text: str) -> None:
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.keys import Keys

        ActionChains(self.driver).send_keys(text, Keys.ENTER).perform()

    @property
    def log(self) -> str:
        value: str = self.driver.find_element("css selector", "#chat-log").get_property("value")
        return value

    def test_a_message_posted_is_seen_by_every_window_of_the_room(self) -> None:
        self.enter_room("room_1")
        self.new_window()
        self.enter_room("room_1")
        self.window(0)
        self.post("hello")
        self.wait(self.driver, lambda _: "hello" in self.log, "window 1 did not see its own message")
        self.window(1)
        self.wait(self.driver, lambda _: "hello" in self.log, "window 2 did not see window 1's message")

    def test_a_message_posted_is_not_seen_in_another_room(self) -> None:
        self.enter_room("room_1")
        self.new_window()
        self.enter_room("room_2")
        self.window(0)
        self.post("world")
        self.wait(self.driver, lambda _: "world" in self.log, "window 1 did not see its own message")
        self.window(1)
        self.post("hello")
        self.wait(self.driver, lambda _: "hello" in self.log, "window 2 did not see its own message")
        self.assertNotIn("world", self.log, "room_2 received room_1's message")

    # -- what the tutorial does not have ------------------------------------------------------

    def test_entering_a_room_shows_its_last_50_messages_in_order(self) -> None:
        room = Room.objects.create(name="busy", owner=self.alice)
        for i in range(60):
            Message.objects.create(room=room, user=self.alice, text=f"m{i:02d}")
        self.enter_room("busy")
        expected = "".join(f"m{i:02d}\n" for i in range(10, 60))
        self.wait(self.driver, lambda _: self.log == expected, f"the log is not the last 50: {self.log[:80]!r}")

    def test_a_member_removed_while_watching_sees_the_room_close(self) -> None:
        bob = User.objects.create_user("bob", "bob@example.com", "bob-pw")
        room = Room.objects.create(name="secret", owner=bob, private=True)
        Membership.objects.create(room=room, user=bob)
        membership = Membership.objects.create(room=room, user=self.alice)
        Message.objects.create(room=room, user=bob, text="welcome")
        self.enter_room("secret")
        self.wait(self.driver, lambda _: "welcome" in self.log, "alice never saw the room")
        # The owner removes her, then writes, from his own page (the live server is
        # another process: its writes are the ones its sockets hear).
        owner = self.signed_in_browser("bob", "bob-pw")
        owner.get(f"{self.live_server_url}/chat/secret/")
        self.wait_live(owner)
        owner.execute_async_script(
            """const [id, room, done] = arguments;
            import("paintbrush").then(async (client) => {
              await client.removeItem("memberships", id);
              await client.createItem("messages", { room, text: "after she left" });
              done();
            });""",
            membership.pk,
            room.pk,
        )
        error = self.wait(
            self.driver,
            lambda d: (box := d.find_element("id", "error")).is_displayed() and box,
            "the page never said the room closed",
        )
        self.assertIn("no longer a member", error.text)
        self.wait(owner, lambda d: "after she left" in d.find_element("id", "chat-log").get_property("value"), "")
        self.assertNotIn("after she left", self.log)
