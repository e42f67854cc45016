"""The process hub (paintbrush.hub): one channel-layer member per process, local fan-out."""

from __future__ import annotations

import asyncio

from channels.layers import InMemoryChannelLayer
from django.test import SimpleTestCase

from paintbrush.broadcast import MESSAGE_TYPE
from paintbrush.hub import Hub, Membership, get_hub


class Recorder:
    def __init__(self, expected: int = 0, gate: asyncio.Event | None = None) -> None:
        self.texts: list[str] = []
        self.expected = expected
        self.gate = gate
        self.done = asyncio.Event()

    lost_calls = 0

    async def lost(self) -> None:
        self.lost_calls += 1

    async def deliver(self, text: str) -> None:
        if self.gate is not None:
            await self.gate.wait()
        self.texts.append(text)
        if len(self.texts) >= self.expected:
            self.done.set()


async def join(hub: Hub, group: str, recorder: Recorder) -> Membership:
    return await hub.join(group, recorder.deliver, recorder.lost)


def event(group: str, text: str) -> dict[str, str]:
    return {"type": MESSAGE_TYPE, "group": group, "text": text}


class HubTests(SimpleTestCase):
    async def test_the_hub_is_the_only_group_member_whatever_the_subscribers(self) -> None:
        layer = InMemoryChannelLayer()
        hub = get_hub(layer)
        subscribers = [Recorder(expected=1) for _ in range(50)]
        memberships = [await join(hub, "g", subscriber) for subscriber in subscribers]
        self.assertEqual(len(layer.groups["g"]), 1)
        await layer.group_send("g", event("g", "hello"))
        for subscriber in subscribers:
            await subscriber.done.wait()
            self.assertEqual(subscriber.texts, ["hello"])
        for membership in memberships:
            await hub.leave(membership)
        self.assertEqual(layer.groups, {})

    async def test_events_of_other_groups_are_not_delivered(self) -> None:
        layer = InMemoryChannelLayer()
        hub = get_hub(layer)
        a, b = Recorder(expected=1), Recorder(expected=1)
        a_m = await join(hub, "a", a)
        b_m = await join(hub, "b", b)
        await layer.group_send("b", event("b", "for b"))
        await layer.group_send("a", event("a", "for a"))
        await a.done.wait()
        await b.done.wait()
        self.assertEqual((a.texts, b.texts), (["for a"], ["for b"]))
        await hub.leave(a_m)
        await hub.leave(b_m)

    async def test_a_slow_subscriber_does_not_make_the_layer_drop_events(self) -> None:
        # The in-memory layer holds 100 messages per channel and drops the rest silently;
        # the hub keeps draining its channel while a fan-out is stuck.
        layer = InMemoryChannelLayer(capacity=100)
        hub = get_hub(layer)
        gate = asyncio.Event()
        slow = Recorder(expected=250, gate=gate)
        slow_m = await join(hub, "g", slow)
        for i in range(250):
            await layer.group_send("g", event("g", str(i)))
            await asyncio.sleep(0)  # as between two writers' commits: the loop runs
        gate.set()
        await asyncio.wait_for(slow.done.wait(), 10)
        self.assertEqual(slow.texts, [str(i) for i in range(250)])
        await hub.leave(slow_m)
        self.assertEqual(layer.groups, {})

    async def test_a_failing_subscriber_does_not_stop_the_others(self) -> None:
        class Broken(Recorder):
            async def deliver(self, text: str) -> None:
                raise RuntimeError("socket gone")

        layer = InMemoryChannelLayer()
        hub = get_hub(layer)
        ok = Recorder(expected=1)
        broken = Broken()
        broken_m = await join(hub, "g", broken)
        ok_m = await join(hub, "g", ok)
        with self.assertLogs("paintbrush", "ERROR"):
            await layer.group_send("g", event("g", "x"))
            await ok.done.wait()
        self.assertEqual(ok.texts, ["x"])
        await hub.leave(broken_m)
        await hub.leave(ok_m)

    async def test_group_membership_is_renewed_while_events_keep_coming(self) -> None:
        # With regular traffic the receive never idles: renewal must not depend on it.
        layer = InMemoryChannelLayer(group_expiry=1)
        hub = get_hub(layer)
        recorder = Recorder(expected=1)
        recorder_m = await join(hub, "g", recorder)
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
        await hub.leave(recorder_m)

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
            recorder_m = await join(hub, "g", recorder)
            await layer.group_send("g", event("g", "after the blip"))
            await asyncio.wait_for(recorder.done.wait(), 5)
        self.assertEqual(recorder.texts, ["after the blip"])
        # Events may have been lost while the layer was unreachable: subscribers resync.
        self.assertEqual(recorder.lost_calls, 1)
        await hub.leave(recorder_m)
