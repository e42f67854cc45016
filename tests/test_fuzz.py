"""Property-based fuzzing (Hypothesis) of what a hostile client controls: every frame
sent to ``/ws`` and every REST body. Whatever arrives, the server answers with one of
the protocol's frames or statuses, keeps the socket open (short of flooding), never
answers 500, and writes nothing unless the write is valid."""

from __future__ import annotations

import json
from typing import Any

from asgiref.sync import async_to_sync
from django.test import override_settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase, TransactionTestCase

from project.demo.models import Todo

from .utils import IN_MEMORY, ws_connect


def strict_json(text: str) -> Any:
    """What a strict client parses: no NaN or Infinity, which JSON does not have."""
    return json.loads(text, parse_constant=lambda token: (_ for _ in ()).throw(ValueError(token)))


fuzz = hypothesis_settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

ERROR_CODES = {"bad_json", "bad_message", "unknown_action", "unknown_resource", "forbidden", "too_large"}

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)
# Messages that look like the protocol's, so that the handler is fuzzed past the parser.
names = st.sampled_from(["todos", "notes", "doc", "products", "orders", "nope", "__init__", ""]) | st.text(max_size=12)
messages = st.fixed_dictionaries(
    {},
    optional={
        "action": st.sampled_from(["opendoc", "closedoc", "_unsubscribe", "opened"]) | json_values,
        "resource": names | json_values,
        "snapshot": st.booleans() | json_values,
    },
)
frames = st.one_of(
    messages.map(json.dumps),
    json_values.map(json.dumps),
    st.text(max_size=200),
    st.sampled_from(["[" * 990 + "]" * 990, '{"action": NaN}', "[Infinity]", '{"a": 1e999}', ""]),
)


@override_settings(CHANNEL_LAYERS=IN_MEMORY, PAINTBRUSH={"MAX_ERRORS_PER_MINUTE": 100_000})
class SocketFuzzTests(TransactionTestCase):
    @fuzz
    @given(batch=st.lists(frames, min_size=1, max_size=5))
    def test_any_frame_gets_a_protocol_answer_and_the_socket_stays_open(self, batch: list[str]) -> None:
        async_to_sync(self.exchange)(batch)

    async def exchange(self, batch: list[str]) -> None:
        ws = await ws_connect()
        try:
            for frame in batch:
                # send_input: the communicator's send_to refuses an empty frame.
                await ws.send_input({"type": "websocket.receive", "text": frame})
                answer = strict_json(await ws.receive_from(timeout=5))
                self.assertIsInstance(answer, dict)
                if answer.get("type") == "error":
                    self.assertIn(answer["error"], ERROR_CODES, answer)
                    self.assertIsInstance(answer["message"], str)
                else:
                    self.assertIn(answer.get("type"), {"opened", "closed"}, answer)
                    if answer["type"] == "opened" and json.loads(frame).get("snapshot") is True:
                        snapshot = json.loads(await ws.receive_from(timeout=5))
                        self.assertEqual(snapshot["action"], "snapshot")
            # Still open and serving.
            await ws.send_to(text_data='{"action": "closedoc", "resource": "todos"}')
            self.assertEqual(json.loads(await ws.receive_from(timeout=5))["type"], "closed")
        finally:
            await ws.disconnect()
        self.assertEqual(await Todo.objects.acount(), 0)


bodies = st.one_of(
    st.fixed_dictionaries(
        {}, optional={"title": json_values | st.text(max_size=250), "done": json_values, "version": json_values}
    ).map(json.dumps),
    json_values.map(json.dumps),
    st.text(max_size=100),
    st.sampled_from(["[" * 2000 + "]" * 2000, '{"title": NaN}', '{"title": "x", "done": Infinity}']),
)


class RestFuzzTests(TestCase):
    @fuzz
    @given(body=bodies, method=st.sampled_from(["post", "put", "patch"]))
    def test_any_body_is_answered_without_a_500_and_only_a_valid_one_writes(self, body: str, method: str) -> None:
        todo = Todo.objects.create(title="existing")
        path = "/api/todos" if method == "post" else f"/api/todos/{todo.pk}"
        response = getattr(self.client, method)(path, body, content_type="application/json")
        # 415: the test client sends an empty body without its content type.
        self.assertIn(response.status_code, {200, 201, 400} | ({415} if not body else set()), response.content[:200])
        self.assertIsInstance(response.json(), dict)
        todo.refresh_from_db()
        if response.status_code in (400, 415):
            self.assertEqual(Todo.objects.count(), 1)
            self.assertEqual((todo.title, todo.version), ("existing", 1))
        else:
            parsed: Any = json.loads(body)
            self.assertIsInstance(parsed, dict)
