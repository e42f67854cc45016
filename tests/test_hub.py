"""The process hub (paintbrush.hub): one channel-layer member per process, local fan-out."""

from __future__ import annotations

import asyncio

from channels.layers import InMemoryChannelLayer
from django.test import SimpleTestCase

from paintbrush.hub import get_hub
from paintbrush.publish import EVENT_TYPE


class Recorder:
    def __init__(self, expected: int = 0, gate: asyncio.Event | None = None) -> None:
        self.texts: list[str] = []
        self.expected = expected
        self.gate = gate
        self.done = asyncio.Event()

    lost_calls = 0

    async def lost(self) -> None:
        self.lost_calls += 1

    async def deliver(self, group: str, text: str) -> None:
        if self.gate is not None:
            await self.gate.wait()
        self.texts.append(text)
        if len(self.texts) >= self.expected:
            self.done.set()


def event(group: str, text: str) -> dict[str, str]:
    return {"type": EVENT_TYPE, "group": group, "text": text}


class HubTests(SimpleTestCase):
    async def test_the_hub_is_the_only_group_member_whatever_the_subscribers(self) -> None:
        layer = InMemoryChannelLayer()
        hub = get_hub(layer)
        subscribers = [Recorder(expected=1) for _ in range(50)]
        for subscriber in subscribers:
            await hub.join("g", subscriber)
        self.assertEqual(len(layer.groups["g"]), 1)
        await layer.group_send("g", event("g", "hello"))
        for subscriber in subscribers:
            await subscriber.done.wait()
            self.assertEqual(subscriber.texts, ["hello"])
        for subscriber in subscribers:
            await hub.leave("g", subscriber)
        self.assertEqual(layer.groups, {})

    async def test_events_of_other_groups_are_not_delivered(self) -> None:
        layer = InMemoryChannelLayer()
        hub = get_hub(layer)
        a, b = Recorder(expected=1), Recorder(expected=1)
        await hub.join("a", a)
        await hub.join("b", b)
        await layer.group_send("b", event("b", "for b"))
        await layer.group_send("a", event("a", "for a"))
        await a.done.wait()
        await b.done.wait()
        self.assertEqual((a.texts, b.texts), (["for a"], ["for b"]))
        await hub.leave("a", a)
        await hub.leave("b", b)

    async def test_a_slow_subscriber_does_not_make_the_layer_drop_events(self) -> None:
        # The in-memory layer holds 100 messages per channel and drops the rest silently;
        # the hub keeps draining its channel while a fan-out is stuck.
        layer = InMemoryChannelLayer(capacity=100)
        hub = get_hub(layer)
        gate = asyncio.Event()
        slow = Recorder(expected=250, gate=gate)
        await hub.join("g", slow)
        for i in range(250):
            await layer.group_send("g", event("g", str(i)))
            await asyncio.sleep(0)  # as between two writers' commits: the loop runs
        gate.set()
        await asyncio.wait_for(slow.done.wait(), 10)
        self.assertEqual(slow.texts, [str(i) for i in range(250)])
        await hub.leave("g", slow)
        self.assertEqual(layer.groups, {})

    async def test_a_failing_subscriber_does_not_stop_the_others(self) -> None:
        class Broken(Recorder):
            async def deliver(self, group: str, text: str) -> None:
                raise RuntimeError("socket gone")

        layer = InMemoryChannelLayer()
        hub = get_hub(layer)
        ok = Recorder(expected=1)
        broken = Broken()
        await hub.join("g", broken)
        await hub.join("g", ok)
        with self.assertLogs("paintbrush", "ERROR"):
            await layer.group_send("g", event("g", "x"))
            await ok.done.wait()
        self.assertEqual(ok.texts, ["x"])
        await hub.leave("g", broken)
        await hub.leave("g", ok)

    async def test_group_membership_is_renewed_while_events_keep_coming(self) -> None:
        # With regular traffic the receive never idles: renewal must not depend on it.
        layer = InMemoryChannelLayer(group_expiry=1)
        hub = get_hub(layer)
        recorder = Recorder(expected=1)
        await hub.join("g", recorder)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 2.5  # well past the expiry
        sent = 0
        while loop.time() < deadline:
            await layer.group_send("g", event("g", str(sent)))
            sent += 1
            await asyncio.sleep(0.1)
        recorder.expected = sent
        recorder.done.clear()
        if len(recorder.texts) < sent:
            await asyncio.wait_for(recorder.done.wait(), 5)
        self.assertEqual(recorder.texts, [str(i) for i in range(sent)])
        await hub.leave("g", recorder)

    async def test_a_failing_receive_does_not_end_delivery(self) -> None:
        class Flaky(InMemoryChannelLayer):
            failed = False

            async def receive(self, channel: str) -> dict[str, str]:
                if not self.failed:
                    self.failed = True
                    raise ConnectionError("redis restarting")
                return await super().receive(channel)  # type: ignore[no-any-return]

        layer = Flaky()
        hub = get_hub(layer)
        recorder = Recorder(expected=1)
        with self.assertLogs("paintbrush", "ERROR"):
            await hub.join("g", recorder)
            await layer.group_send("g", event("g", "after the blip"))
            await asyncio.wait_for(recorder.done.wait(), 5)
        self.assertEqual(recorder.texts, ["after the blip"])
        # Events may have been lost while the layer was unreachable: subscribers resync.
        self.assertEqual(recorder.lost_calls, 1)
        await hub.leave("g", recorder)
