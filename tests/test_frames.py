"""The wire's vocabulary (paintbrush.frames): each frame builder's exact JSON, snapshots
split into frames under the size limit (``"more": true`` on all but the last), the
``LayerMessage`` between processes both ways, and a metrics label for every resync
reason."""

from __future__ import annotations

import json
from typing import Any

from asgiref.sync import sync_to_async
from django.test import SimpleTestCase, TransactionTestCase, override_settings

from paintbrush import encoding, frames
from paintbrush.frames import MESSAGE_TYPE, PROBE_TYPE, REASON_CODES, LayerMessage
from paintbrush.testing import connect, receive
from project.demo.models import Todo

from .utils import IN_MEMORY

#: What a frame of ``snapshot()`` holds besides its items: the empty frame, and the mark.
EMPTY = '{"resource":"todos","action":"snapshot","items":[]}'
MORE = ',"more":true'


class FrameTests(SimpleTestCase):
    def test_opened_and_closed_name_the_resource(self) -> None:
        self.assertEqual(frames.opened("todos"), '{"type":"opened","resource":"todos"}')
        self.assertEqual(frames.closed("todos"), '{"type":"closed","resource":"todos"}')

    def test_an_error_carries_the_request_only_when_given_and_any_extra_keys_last(self) -> None:
        self.assertEqual(
            frames.error("bad_json", "The frame is not JSON."),
            '{"type":"error","error":"bad_json","message":"The frame is not JSON."}',
        )
        self.assertEqual(
            frames.error("rate_limited", "Slow down.", {"action": "opendoc", "resource": "todos"}, retry_after=2.5),
            '{"type":"error","error":"rate_limited","message":"Slow down.",'
            '"request":{"action":"opendoc","resource":"todos"},"retry_after":2.5}',
        )
        self.assertEqual(
            frames.error("unavailable", "Later.", retry_after=1),
            '{"type":"error","error":"unavailable","message":"Later.","retry_after":1}',
        )

    def test_a_resync_is_encoded_once_for_the_same_resource_and_reason(self) -> None:
        text = frames.resync("todos", frames.LAYER_DOWN)
        self.assertEqual(json.loads(text), {"type": "resync", "resource": "todos", "reason": frames.LAYER_DOWN})
        self.assertIs(frames.resync("todos", frames.LAYER_DOWN), text)
        self.assertNotEqual(frames.resync("todos", frames.MESSAGE_LOST), text)

    def test_a_document_travels_whole_under_the_reserved_name(self) -> None:
        body = frames.document_body("admin", [("orders", "[]"), (None, '{"n":1}'), (None, "{}")])
        self.assertEqual(
            frames.document_text(body),
            '{"type":"doc","resource":"doc","doc":{"role":"admin","orders":[],"n":1}}',
        )
        self.assertEqual(json.loads(frames.document_text(body, rev=3))["rev"], 3)
        doc = {"role": "admin", "orders": [], "n": 1}  # spliced: the text encode gives the whole
        self.assertEqual(frames.document_text(body), encoding.encode({"type": "doc", "resource": "doc", "doc": doc}))
        self.assertEqual(frames.DOC, "doc")

    def test_deltas_are_dicts_to_encode_once(self) -> None:
        self.assertEqual(
            frames.create("todos", {"id": 7, "title": "a"}),
            {"resource": "todos", "action": "create", "item": {"id": 7, "title": "a"}},
        )
        self.assertEqual(
            frames.update("todos", 7, {"done": True}, version=2),
            {"resource": "todos", "action": "update", "id": 7, "fields": {"done": True}, "version": 2},
        )
        self.assertEqual(
            frames.delete("todos", 7, version=3), {"resource": "todos", "action": "delete", "id": 7, "version": 3}
        )
        self.assertIsNone(frames.update("notes", 1, {}, version=None)["version"])  # a model without versions

    def test_every_resync_reason_has_its_own_metrics_label(self) -> None:
        # A reason is every constant of the module's surface but the names and types.
        reasons = {
            getattr(frames, name)
            for name in frames.__all__
            if name.isupper() and name not in {"DOC", "MESSAGE_TYPE", "PROBE_TYPE", "REASON_CODES"}
        }
        self.assertEqual(set(REASON_CODES), reasons)
        self.assertEqual(len(set(REASON_CODES.values())), len(REASON_CODES))
        self.assertTrue(all(code.isidentifier() and code.islower() for code in REASON_CODES.values()))


class SnapshotTests(SimpleTestCase):
    def items(self, count: int, size: int) -> list[dict[str, Any]]:
        # Not ASCII: the limit counts bytes, as servers do.
        return [{"id": i, "title": "é" * size} for i in range(count)]

    def test_every_frame_but_the_last_says_more_and_all_items_arrive_in_order(self) -> None:
        items = self.items(50, 40)
        texts = frames.snapshot("todos", items, limit=1000)
        parsed = [json.loads(text) for text in texts]
        self.assertGreater(len(parsed), 3)
        self.assertTrue(all(frame["more"] is True for frame in parsed[:-1]))
        self.assertNotIn("more", parsed[-1])
        self.assertTrue(all((f["resource"], f["action"]) == ("todos", "snapshot") for f in parsed))
        self.assertEqual([item for frame in parsed for item in frame["items"]], items)

    def test_each_frame_is_at_most_the_limit_past_its_envelope(self) -> None:
        limit = 1000
        for text in frames.snapshot("todos", self.items(50, 40), limit=limit):
            self.assertLessEqual(len(text.encode()), limit + len(EMPTY) + len(MORE), text)
        # Nor needlessly small: each frame but the last had no room for the next item.
        items = self.items(50, 40)
        largest = max(len(json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode()) for item in items)
        for text in frames.snapshot("todos", items, limit=limit)[:-1]:
            joined = len(text.encode()) - len(EMPTY) - len(MORE)  # the items and their commas
            self.assertGreater(joined + 1 + largest, limit)

    def test_an_item_larger_than_the_limit_travels_alone(self) -> None:
        small, big = {"id": 1}, {"id": 2, "title": "x" * 500}
        texts = frames.snapshot("todos", [small, big, small], limit=100)
        self.assertEqual([json.loads(text)["items"] for text in texts], [[small], [big], [small]])

    def test_an_empty_table_is_one_frame_with_no_items(self) -> None:
        self.assertEqual(frames.snapshot("todos", [], limit=100), [EMPTY])


class LayerMessageTests(SimpleTestCase):
    def test_a_text_goes_to_the_layer_and_back(self) -> None:
        message = LayerMessage("todos-group", "process-1", 41, '{"action":"create"}')
        layer = message.to_layer()
        self.assertEqual(
            layer,
            {
                "type": MESSAGE_TYPE,
                "group": "todos-group",
                "origin": "process-1",
                "seq": 41,
                "text": '{"action":"create"}',
            },
        )
        self.assertEqual(LayerMessage.from_layer(layer), message)

    def test_the_lost_marker_goes_to_the_layer_and_back(self) -> None:
        lost = LayerMessage("todos-group", "process-1", 42, None)
        layer = lost.to_layer()
        self.assertEqual(
            layer, {"type": MESSAGE_TYPE, "group": "todos-group", "origin": "process-1", "seq": 42, "lost": True}
        )
        self.assertEqual(LayerMessage.from_layer(layer), lost)

    def test_foreign_or_malformed_messages_are_none(self) -> None:
        good = LayerMessage("g", "o", 1, "t").to_layer()
        for message in (
            {**good, "type": PROBE_TYPE},
            {**good, "type": "chat.message"},
            {key: value for key, value in good.items() if key != "type"},
            {key: value for key, value in good.items() if key != "group"},
            {**good, "group": ["g"]},
            {key: value for key, value in good.items() if key != "text"},
            {**good, "text": b"bytes"},
            {**good, "text": None},
        ):
            with self.subTest(message=message):
                self.assertIsNone(LayerMessage.from_layer(message))

    def test_an_origin_or_number_of_the_wrong_type_is_read_as_unknown(self) -> None:
        message = LayerMessage.from_layer({**LayerMessage("g", "o", 1, "t").to_layer(), "origin": 5, "seq": "1"})
        self.assertEqual(message, LayerMessage("g", None, None, "t"))


@override_settings(CHANNEL_LAYERS=IN_MEMORY)
class SnapshotOverTheSocketTests(TransactionTestCase):
    @override_settings(CHANNEL_LAYERS=IN_MEMORY, PAINTBRUSH={"SNAPSHOT_FRAME_BYTES": 2048})
    async def test_a_snapshot_over_the_frame_size_is_split_and_whole(self) -> None:
        await sync_to_async(Todo.objects.bulk_create)(Todo(title=f"{i:04} " + "x" * 150) for i in range(60))
        ws = await connect()
        await ws.send_json_to({"action": "opendoc", "resource": "todos", "snapshot": True})
        self.assertEqual(await receive(ws), {"type": "opened", "resource": "todos"})
        frames: list[dict[str, Any]] = []
        while not frames or frames[-1].get("more"):
            text = await ws.receive_from(timeout=5)
            self.assertLessEqual(len(text.encode()), 2048 + 300)  # at most one item past the size
            frames.append(json.loads(text))
        self.assertGreater(len(frames), 3)
        self.assertTrue(all(f["more"] is True for f in frames[:-1]) and "more" not in frames[-1])
        items = [item for frame in frames for item in frame["items"]]
        expected = await sync_to_async(lambda: self.client.get("/api/todos").json())()
        self.assertEqual(items, expected)
        await ws.disconnect()
