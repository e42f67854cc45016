"""A socket's outbox (paintbrush.outbox): sends at once while the socket keeps up,
queues behind a send in flight, and past MAX_PENDING_BYTES drops events for a resync
(or closes a socket that does not drain with 1013, counted in the metrics and logged)."""

from __future__ import annotations

import asyncio
import json

from django.test import SimpleTestCase, override_settings

from paintbrush.outbox import TRY_AGAIN_LATER, Outbox

from .utils import metric


class Wire:
    """A socket's server side: every send waits while ``open`` is clear (a client that
    does not read); ``gone`` is set once the socket is closed."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.open = asyncio.Event()
        self.open.set()
        self.closed: list[int] = []
        self.gone = asyncio.Event()

    async def send(self, text: str) -> None:
        await self.open.wait()
        self.sent.append(text)

    async def close(self, code: int) -> None:
        self.closed.append(code)
        self.gone.set()


def outbox_for(wire: Wire) -> Outbox:
    return Outbox(wire.send, wire.close)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


class OutboxTests(SimpleTestCase):
    async def test_a_socket_that_keeps_up_is_sent_at_once_without_a_task(self) -> None:
        wire = Wire()
        outbox = outbox_for(wire)
        outbox.put_event("todos", "a")
        outbox.put_reply("b")
        self.assertEqual(wire.sent, ["a", "b"])  # before any await: no task was needed
        self.assertIsNone(outbox._task)

    async def test_frames_queue_in_order_behind_a_send_in_flight(self) -> None:
        wire = Wire()
        wire.open.clear()
        outbox = outbox_for(wire)
        for text in ("1", "2", "3"):
            outbox.put_event("todos", text)
        outbox.put_reply("reply")
        self.assertEqual(wire.sent, [])
        wire.open.set()
        await settle()
        self.assertEqual(wire.sent, ["1", "2", "3", "reply"])
        self.assertIsNone(outbox._task)

    @override_settings(PAINTBRUSH={"MAX_PENDING_BYTES": 100})
    async def test_past_the_bound_events_are_dropped_and_a_resync_follows_the_drain(self) -> None:
        wire = Wire()
        wire.open.clear()
        outbox = outbox_for(wire)
        outbox.put_event("todos", "first")  # in flight
        outbox.put_reply("opened")  # a reply is never dropped
        for i in range(30):
            outbox.put_event("todos", f"event {i:02}")  # 8 bytes each: past 100 at the 13th
        self.assertLessEqual(outbox.pending_bytes, 100)
        wire.open.set()
        await settle()
        self.assertEqual(wire.sent[:2], ["first", "opened"])
        resyncs = [json.loads(t) for t in wire.sent if t.startswith("{")]
        self.assertEqual([(r["type"], r["resource"]) for r in resyncs], [("resync", "todos")])
        self.assertEqual(wire.sent[-1], json.dumps(resyncs[0], separators=(",", ":")))
        # Every event either went out before the drop or was replaced by the resync.
        self.assertEqual(outbox.dropped + len(wire.sent) - 3, 30)
        self.assertEqual(wire.closed, [])

    @override_settings(PAINTBRUSH={"MAX_PENDING_BYTES": 10, "SLOW_SOCKET_SECONDS": 0.05})
    async def test_a_socket_that_does_not_drain_in_time_is_closed_1013_counted_and_logged(self) -> None:
        wire = Wire()
        wire.open.clear()
        outbox = outbox_for(wire)
        outbox.client = "address:192.0.2.1"
        dropped, refusals = (
            metric("paintbrush_dropped_frames_total"),
            metric("paintbrush_refusals_total", reason="slow_socket"),
        )
        with self.assertLogs("paintbrush", "INFO") as logs:
            for i in range(10):
                outbox.put_event("todos", f"event {i}")
            await asyncio.wait_for(wire.gone.wait(), timeout=5)  # SLOW_SOCKET_SECONDS, then the close
        self.assertIn("did not drain", logs.output[0])
        self.assertEqual(wire.closed, [TRY_AGAIN_LATER])
        self.assertTrue(outbox.closed)
        # Counted: the events it dropped, and one refusal, logged with its client.
        self.assertGreater(outbox.dropped, 0)
        self.assertEqual(metric("paintbrush_dropped_frames_total"), dropped + outbox.dropped)
        self.assertEqual(metric("paintbrush_refusals_total", reason="slow_socket"), refusals + 1)
        record = logs.records[0]
        self.assertTrue(record.getMessage().startswith("paintbrush.refused reason=slow_socket"), record.getMessage())
        self.assertEqual((record.event, record.client, record.code), ("paintbrush.refused", "address:192.0.2.1", 1013))  # type: ignore[attr-defined]
        outbox.put_event("todos", "after")  # nothing more is queued for a closed socket
        self.assertEqual(outbox.pending_bytes, 0)

    async def test_only_the_newest_pending_document_is_kept(self) -> None:
        wire = Wire()
        wire.open.clear()
        outbox = outbox_for(wire)
        outbox.put_reply("in flight")
        for version in range(5):
            outbox.put_document(f"doc {version}")
        wire.open.set()
        await settle()
        self.assertEqual(wire.sent, ["in flight", "doc 4"])

    async def test_forget_drops_a_closed_subscription_s_pending_events(self) -> None:
        wire = Wire()
        wire.open.clear()
        outbox = outbox_for(wire)
        outbox.put_reply("in flight")
        outbox.put_event("todos", "t")
        outbox.put_event("notes", "n")
        outbox.forget("todos")
        wire.open.set()
        await settle()
        self.assertEqual(wire.sent, ["in flight", "n"])

    async def test_a_failing_send_does_not_stop_the_outbox(self) -> None:
        sent: list[str] = []

        async def send(text: str) -> None:
            if text == "boom":
                raise ConnectionError("gone")
            sent.append(text)

        async def close(code: int) -> None:
            pass

        outbox = Outbox(send, close)
        outbox.put_reply("boom")
        outbox.put_reply("after")
        self.assertEqual(sent, ["after"])
