"""Observability (paintbrush.metrics): the counters move when events are published,
fanned out and resynced, sockets open and subscribe, clients are refused; refusals and
resyncs are logged with their fields; the views answer staff and the allowed addresses
only, in a format Prometheus parses. (A slow socket's drops and its 1013 close are
counted in test_outbox, where the outbox's own behaviour is asserted with them.)"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Callable
from unittest import mock

from asgiref.sync import sync_to_async
from channels.layers import InMemoryChannelLayer
from django.contrib.auth import get_user_model
from django.core.checks import Error
from django.test import SimpleTestCase, TestCase, TransactionTestCase, override_settings
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from paintbrush import broadcast, metrics
from paintbrush.checks import check_settings
from paintbrush.frames import FELL_BEHIND, LAYER_DOWN, LayerMessage
from paintbrush.hub import get_hub
from paintbrush.outbox import Outbox
from paintbrush.sockets import TOO_MANY_SOCKETS
from paintbrush.testing import communicator, connect, receive, subscribe
from project.demo.models import Todo

from .test_outbox import Wire
from .utils import IN_MEMORY, metric


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


class CounterTests(SimpleTestCase):
    def test_a_publish_counts_the_messages_sent_and_refused(self) -> None:
        sent, failed = metric("paintbrush_events_published_total"), metric("paintbrush_publish_failures_total")
        layer = InMemoryChannelLayer()
        with mock.patch.object(broadcast, "get_channel_layer", return_value=layer):
            broadcast.send([("metrics-a", "1"), ("metrics-b", "2")])
        self.assertEqual(metric("paintbrush_events_published_total"), sent + 2)
        self.assertEqual(metric("paintbrush_publish_failures_total"), failed)

    async def test_a_message_counts_its_local_members_and_one_lag_observation(self) -> None:
        layer = InMemoryChannelLayer()
        hub = get_hub(layer)
        texts: list[str] = []
        memberships = [await hub.join("g", texts.append, lambda reason: None) for _ in range(3)]
        deliveries, lags = metric("paintbrush_deliveries_total"), metric("paintbrush_fanout_lag_seconds_count")
        await layer.group_send("g", LayerMessage("g", "origin", 1, "hello").to_layer())
        await until(lambda: metric("paintbrush_fanout_lag_seconds_count") == lags + 1)
        self.assertEqual(texts, ["hello"] * 3)
        self.assertEqual(metric("paintbrush_deliveries_total"), deliveries + 3)
        self.assertEqual(metric("paintbrush_fanout_lag_seconds_bucket", le="+Inf"), lags + 1)
        self.assertEqual(hub._received_at, type(hub._received_at)())  # nothing left behind
        # While messages wait, the backlog gauge reads the live hubs.
        hub.backlog += 7
        try:
            self.assertEqual(metrics.snapshot()["backlog"], 7)
            self.assertEqual(metric("paintbrush_hub_backlog"), 7)
        finally:
            hub.backlog -= 7
        for membership in memberships:
            await hub.leave(membership)

    async def test_shed_messages_are_counted_once_per_shedding(self) -> None:
        hub = get_hub(InMemoryChannelLayer())
        before = metric("paintbrush_shed_messages_total")
        with self.settings(PAINTBRUSH={"HUB_MAX_BACKLOG": 10}), self.assertLogs("paintbrush", "WARNING"):
            for i in range(4):
                hub._pending.append(("g", str(i), 5))
                hub._received_at.append(0.0)
                hub.backlog += 5
            hub._shed()
        self.assertEqual(metric("paintbrush_shed_messages_total"), before + hub.dropped)
        self.assertEqual(len(hub._received_at), 4 - hub.dropped)

    async def test_a_resync_is_counted_by_reason_and_logged(self) -> None:
        outbox = Outbox(Wire().send, Wire().close)
        outbox.client = "user:5"
        before = {code: metric("paintbrush_resyncs_total", reason=code) for code in ("layer_down", "slow_socket")}
        with self.assertLogs("paintbrush", "INFO") as logs:
            outbox.resync("todos", LAYER_DOWN)
            outbox.resync("todos", FELL_BEHIND)
        self.assertEqual(metric("paintbrush_resyncs_total", reason="layer_down"), before["layer_down"] + 1)
        self.assertEqual(metric("paintbrush_resyncs_total", reason="slow_socket"), before["slow_socket"] + 1)
        self.assertEqual(
            logs.records[0].getMessage(),
            f"paintbrush.resync resource=todos reason={json.dumps(LAYER_DOWN)} code=layer_down client=user:5",
        )
        self.assertEqual(logs.records[0].resource, "todos")  # type: ignore[attr-defined]
        outbox.close()

    def test_log_fields_that_shadow_record_attributes_are_renamed_in_extra(self) -> None:
        with self.assertLogs("paintbrush", "INFO") as logs:
            metrics.log("test", name='a "b"', count=3, empty="")
        record = logs.records[0]
        self.assertEqual(record.getMessage(), 'paintbrush.test name="a \\"b\\"" count=3 empty=""')
        self.assertEqual((record.name, record.name_, record.count), ("paintbrush", 'a "b"', 3))  # type: ignore[attr-defined]

    def test_a_document_assembly_is_counted_and_timed(self) -> None:
        count, timed = (
            metric("paintbrush_document_assemblies_total", role="r"),
            metric("paintbrush_document_assembly_seconds_count"),
        )
        with metrics.assembling("r"):
            pass
        self.assertEqual(metric("paintbrush_document_assemblies_total", role="r"), count + 1)
        self.assertEqual(metric("paintbrush_document_assembly_seconds_count"), timed + 1)

    def test_quantiles_interpolate_inside_a_bucket(self) -> None:
        buckets = [(0.001, 0.0), (0.01, 50.0), (0.1, 100.0)]
        self.assertAlmostEqual(metrics.quantile(0.5, buckets, 100) or 0, 0.01)
        self.assertAlmostEqual(metrics.quantile(0.25, buckets, 100) or 0, 0.0055)
        self.assertEqual(metrics.quantile(0.99, [(0.001, 0.0)], 10), 0.001)  # past every bound
        self.assertIsNone(metrics.quantile(0.5, buckets, 0))


@override_settings(CHANNEL_LAYERS=IN_MEMORY)
class SocketCounterTests(TransactionTestCase):
    async def test_sockets_subscriptions_and_a_live_event_move_the_numbers(self) -> None:
        sockets, subscriptions = metric("paintbrush_sockets"), metric("paintbrush_subscriptions", resource="todos")
        published, deliveries = metric("paintbrush_events_published_total"), metric("paintbrush_deliveries_total")
        ws = await connect()
        self.assertEqual(metric("paintbrush_sockets"), sockets + 1)
        await subscribe(ws, "todos")
        self.assertEqual(metric("paintbrush_subscriptions", resource="todos"), subscriptions + 1)
        self.assertEqual(metrics.snapshot()["subscriptions"].get("todos"), subscriptions + 1)
        await sync_to_async(Todo.objects.create)(title="counted")
        self.assertEqual((await receive(ws))["action"], "create")
        await until(lambda: metric("paintbrush_deliveries_total") >= deliveries + 1)
        self.assertGreaterEqual(metric("paintbrush_events_published_total"), published + 1)
        await ws.send_json_to({"action": "closedoc", "resource": "todos"})
        self.assertEqual((await receive(ws))["type"], "closed")
        self.assertEqual(metric("paintbrush_subscriptions", resource="todos"), subscriptions)
        await ws.disconnect()
        self.assertEqual(metric("paintbrush_sockets"), sockets)

    async def test_role_documents_count_as_subscriptions_on_either_socket(self) -> None:
        # They used to be left out of paintbrush_subscriptions.
        alice = await sync_to_async(get_user_model().objects.create_user)("alice")
        before = metric("paintbrush_subscriptions", resource="doc")
        multiplexed = await connect(user=alice)
        await multiplexed.send_json_to({"action": "opendoc", "resource": "doc"})
        self.assertEqual((await receive(multiplexed))["type"], "opened")
        self.assertEqual((await receive(multiplexed))["type"], "doc")
        dedicated = await connect("/ws/doc", user=alice)
        self.assertEqual((await receive(dedicated))["type"], "doc")
        self.assertEqual(metric("paintbrush_subscriptions", resource="doc"), before + 2)
        await multiplexed.send_json_to({"action": "closedoc", "resource": "doc"})
        self.assertEqual((await receive(multiplexed))["type"], "closed")
        await dedicated.disconnect()
        self.assertEqual(metric("paintbrush_subscriptions", resource="doc"), before)
        await multiplexed.disconnect()

    async def test_refusals_are_counted_and_logged_with_the_client(self) -> None:
        too_large = metric("paintbrush_refusals_total", reason="too_large")
        ws = await connect()
        with self.assertLogs("paintbrush", "INFO") as logs:
            await ws.send_to(text_data="x" * (64 * 1024 + 1))
            self.assertEqual((await receive(ws))["error"], "too_large")
        self.assertEqual(metric("paintbrush_refusals_total", reason="too_large"), too_large + 1)
        self.assertIn("paintbrush.refused reason=too_large client=address:", logs.output[0])
        await ws.disconnect()

    @override_settings(PAINTBRUSH={"MAX_SOCKETS_PER_CLIENT": 1, "MAX_ERRORS_PER_MINUTE": 1})
    async def test_too_many_sockets_and_a_flood_are_refusals(self) -> None:
        before = {r: metric("paintbrush_refusals_total", reason=r) for r in ("too_many_sockets", "flood", "access")}
        first = await connect()
        with self.assertLogs("paintbrush", "INFO") as logs:
            second = await communicator()
            await second.connect()
            self.assertEqual((await second.receive_output(timeout=5))["code"], TOO_MANY_SOCKETS)
            for _ in range(2):
                await first.send_to(text_data="{nope")
            self.assertEqual((await receive(first))["error"], "bad_json")
            self.assertEqual((await first.receive_output(timeout=5))["code"], 4008)  # 1008, as Daphne sends it
        self.assertEqual(metric("paintbrush_refusals_total", reason="too_many_sockets"), before["too_many_sockets"] + 1)
        self.assertEqual(metric("paintbrush_refusals_total", reason="flood"), before["flood"] + 1)
        self.assertEqual([r.reason for r in logs.records], ["too_many_sockets", "flood"])  # type: ignore[attr-defined]
        await first.disconnect()
        # A handshake refused for access: a signed-out /ws/doc.
        with self.assertLogs("paintbrush", "INFO") as logs:
            connected, _ = await (await communicator("/ws/doc")).connect()
        self.assertFalse(connected)
        self.assertEqual(metric("paintbrush_refusals_total", reason="access"), before["access"] + 1)
        self.assertIn("path=/ws/doc", logs.output[0])


class ViewTests(TestCase):
    def test_local_addresses_may_read_the_exposition_and_it_parses(self) -> None:
        response = self.client.get("/metrics")
        self.assertEqual(response.status_code, 200)
        self.assertTrue(response["Content-Type"].startswith("text/plain"))
        families = {f.name: f for f in text_string_to_metric_families(response.content.decode())}
        for name in (
            "paintbrush_sockets",
            "paintbrush_subscriptions",
            "paintbrush_events_published",
            "paintbrush_publish_failures",
            "paintbrush_deliveries",
            "paintbrush_fanout_lag_seconds",
            "paintbrush_hub_backlog",
            "paintbrush_resyncs",
            "paintbrush_dropped_frames",
            "paintbrush_shed_messages",
            "paintbrush_refusals",
            "paintbrush_document_assemblies",
            "paintbrush_document_assembly_seconds",
        ):
            self.assertIn(name, families)
            self.assertTrue(families[name].documentation, name)
        self.assertEqual(families["paintbrush_fanout_lag_seconds"].type, "histogram")
        self.assertIn("no-cache", response["Cache-Control"])

    def test_openmetrics_is_served_to_a_scraper_that_asks(self) -> None:
        response = self.client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
        self.assertTrue(response["Content-Type"].startswith("application/openmetrics-text"))
        self.assertTrue(response.content.endswith(b"# EOF\n"))

    def test_other_addresses_are_403_unless_staff(self) -> None:
        for path in ("/metrics", "/ops/metrics.json"):
            self.assertEqual(self.client.get(path, REMOTE_ADDR="203.0.113.9").status_code, 403, path)
        self.client.force_login(get_user_model().objects.create_user("someone"))
        self.assertEqual(self.client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code, 403)
        self.client.force_login(get_user_model().objects.create_user("ops", is_staff=True))
        self.assertEqual(self.client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code, 200)

    def test_allowed_addresses_may_be_networks_and_mapped_ipv4(self) -> None:
        with self.settings(PAINTBRUSH={"METRICS_ALLOWED_ADDRESSES": ["10.0.0.0/8"]}):
            self.assertEqual(self.client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code, 200)
            self.assertEqual(self.client.get("/metrics", REMOTE_ADDR="::ffff:10.1.2.3").status_code, 200)
            self.assertEqual(self.client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code, 403)
        with self.settings(PAINTBRUSH={"METRICS_ALLOWED_ADDRESSES": []}):
            self.assertEqual(self.client.get("/metrics").status_code, 403)

    def test_the_json_snapshot_holds_the_numbers_the_ops_page_plots(self) -> None:
        response = self.client.get("/ops/metrics.json")
        self.assertEqual(response.status_code, 200)
        data = response.json()
        for key in ("sockets", "subscriptions", "events_published", "deliveries", "backlog", "resyncs", "dropped"):
            self.assertIn(key, data)
        self.assertEqual(set(data["lag"]), {"count", "sum", "p50", "p99", "buckets"})
        self.assertEqual([b[0] for b in data["lag"]["buckets"]][:2], [0.001, 0.0025])

    def test_with_a_multiprocess_directory_the_views_read_it(self) -> None:
        with tempfile.TemporaryDirectory() as path, mock.patch.dict("os.environ", {"PROMETHEUS_MULTIPROC_DIR": path}):
            response = self.client.get("/metrics")
            self.assertEqual(response.status_code, 200)
            names = {f.name for f in text_string_to_metric_families(response.content.decode())}
            self.assertIn("paintbrush_hub_backlog", names)  # this process's, read at scrape time
            self.assertEqual(self.client.get("/ops/metrics.json").json()["sockets"], 0)

    def test_a_project_may_add_the_registry_to_its_own(self) -> None:
        theirs = CollectorRegistry(auto_describe=True)
        theirs.register(metrics.registry)
        self.assertIn(b"paintbrush_deliveries_total", generate_latest(theirs))

    def test_the_ops_page_is_for_staff(self) -> None:
        self.assertRedirects(self.client.get("/ops/"), "/accounts/login/?next=/ops/", fetch_redirect_response=False)
        User = get_user_model()
        self.client.force_login(User.objects.create_user("alice"))
        self.assertEqual(self.client.get("/ops/").status_code, 403)
        self.client.force_login(User.objects.create_user("admin", is_staff=True))
        response = self.client.get("/ops/")
        self.assertContains(response, 'data-source="/ops/metrics.json"')
        self.assertContains(response, '<script type="importmap">')


class SettingTests(SimpleTestCase):
    def test_the_allowed_addresses_must_be_addresses_or_networks(self) -> None:
        for bad in ("127.0.0.1", ["localhost"], [1], ["10.0.0.0/33"]):
            with self.settings(PAINTBRUSH={"METRICS_ALLOWED_ADDRESSES": bad}):
                errors = check_settings()
            self.assertEqual([type(e) for e in errors], [Error], bad)
            self.assertIn("METRICS_ALLOWED_ADDRESSES", errors[0].msg)
        with self.settings(PAINTBRUSH={"METRICS_ALLOWED_ADDRESSES": ["::1", "10.0.0.0/8", "2001:db8::/32"]}):
            self.assertEqual(check_settings(), [])
