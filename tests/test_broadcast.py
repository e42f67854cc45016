"""The writer's side (paintbrush.broadcast): messages are numbered per group, and a
channel layer that refuses them never fails a committed write; its groups are told
(a ``lost`` marker) once the layer takes messages again."""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from typing import Any
from unittest import mock

from channels.layers import InMemoryChannelLayer
from django.test import TestCase, override_settings

from paintbrush import broadcast
from paintbrush.groups import event_group
from project.demo.models import Checklist

from .utils import IN_MEMORY


class Refusing(InMemoryChannelLayer):
    """A channel layer whose server is down until ``up`` is set."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.up = threading.Event()
        self.sent: list[dict[str, Any]] = []

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        if not self.up.is_set():
            raise ConnectionError("Connection refused")
        self.sent.append(message)


@override_settings(CHANNEL_LAYERS=IN_MEMORY)
class BroadcastTests(TestCase):
    def setUp(self) -> None:
        broadcast._unsent.clear()

    def test_messages_are_numbered_per_group_by_process(self) -> None:
        layer = Refusing()
        layer.up.set()
        with mock.patch.object(broadcast, "get_channel_layer", return_value=layer):
            broadcast.send([("a", "1"), ("b", "1"), ("a", "2")])
        seqs = [(m["group"], m["seq"]) for m in layer.sent]
        first = seqs[0][1]
        self.assertEqual(seqs, [("a", first), ("b", seqs[1][1]), ("a", first + 1)])
        self.assertEqual({m["origin"] for m in layer.sent}, {broadcast._origin_id()})

    def test_a_write_while_the_layer_is_down_is_201_and_its_group_is_told_later(self) -> None:
        # Checklists: one group per write (todos, scoped by done, have two).
        layer = Refusing()
        failed_before = broadcast.stats["failed"]
        with (
            mock.patch.object(broadcast, "get_channel_layer", return_value=layer),
            mock.patch.object(broadcast, "_RETRY_SECONDS", (0.01,)),
            self.assertLogs("paintbrush", "WARNING") as logs,
        ):
            with self.captureOnCommitCallbacks(execute=True):
                response = self.client.post(
                    "/api/checklists", {"title": "during the outage"}, content_type="application/json"
                )
            self.assertEqual(response.status_code, 201)
            self.assertEqual(broadcast.stats["failed"], failed_before + 1)
            self.assertIn("refused a message", logs.output[0])
            retrying = broadcast._Process.retrying
            assert retrying is not None
            layer.up.set()  # Redis is back: the retry thread sends the marker
            retrying.join(5)
        self.assertTrue(Checklist.objects.filter(title="during the outage").exists())
        markers = [m for m in layer.sent if m.get("lost")]
        self.assertEqual([m["group"] for m in markers], [event_group("checklists", "all")])
        self.assertEqual(broadcast._unsent, set())

    def test_message_numbers_are_kept_for_the_most_recently_written_groups_only(self) -> None:
        # One entry per group ever written used to stay for the process's life.
        layer = Refusing()
        layer.up.set()
        with (
            mock.patch.object(broadcast, "get_channel_layer", return_value=layer),
            mock.patch.object(broadcast, "_MAX_GROUPS", 3),
            mock.patch.object(broadcast, "_seq", OrderedDict()),
            mock.patch.object(broadcast._Process, "forgotten", 0),
        ):
            broadcast.send([("old", "1")])
            broadcast.send([(f"g{i}", "1") for i in range(3)])  # "old" is forgotten
            broadcast.send([("old", "2")])
            self.assertLessEqual(len(broadcast._seq), 3)
        first, again = (m for m in layer.sent if m["group"] == "old")
        # Numbered anew, under another origin name: no hub takes 1 for a repeat of 1.
        self.assertEqual(again["seq"], 1)
        self.assertNotEqual(again["origin"], first["origin"])
        self.assertTrue(again["origin"].startswith(broadcast._origin_id()))

    def test_a_send_the_layer_never_answers_is_refused_in_time(self) -> None:
        # A connection dropped without FIN or RST: the send waits for a reply that never
        # comes, and the write's response with it (30 s with the demo's socket_timeout).
        class Silent(Refusing):
            async def group_send(self, group: str, message: dict[str, Any]) -> None:
                await asyncio.Event().wait()

        layer = Silent()
        with (
            mock.patch.object(broadcast, "get_channel_layer", return_value=layer),
            mock.patch.object(broadcast, "_retry_later"),
            override_settings(PAINTBRUSH={"LAYER_TIMEOUT_SECONDS": 0.1}),
            self.assertLogs("paintbrush", "WARNING"),
        ):
            broadcast.send([("silent", "1")])
        self.assertEqual(broadcast._unsent, {"silent"})  # owed a lost marker
