"""Role documents pushed as patches (docs/protocol.md, section 2c): the diff and its
application, parts assembled once per change, revisions, and that applying every frame
in order yields what GET /api/doc returns."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from typing import Any
from unittest import mock

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import Client, SimpleTestCase, TransactionTestCase, override_settings

from paintbrush import metrics
from paintbrush.documents import EVERY, Part, PerUser, Role, Shared, patches, roles
from paintbrush.documents.hub import PartState, Revision
from paintbrush.hub import get_hub
from paintbrush.outbox import Outbox
from paintbrush.testing import DocumentReplica, connect, receive
from project.demo.live import catalog
from project.demo.models import Order, Product

from .test_shop import make_shop
from .utils import IN_MEMORY


class DiffTests(SimpleTestCase):
    def check(self, old: Any, new: Any) -> list[patches.Op]:
        ops = patches.diff(old, new)
        self.assertEqual(patches.apply(old, ops), new)
        return ops

    def test_items_are_matched_by_id_not_position(self) -> None:
        old = [{"id": i, "n": i} for i in range(1, 6)]
        self.assertEqual(
            self.check(old, [{"id": 0, "n": 0}, *old]),
            [{"op": "add", "path": "/0", "value": old[0] | {"id": 0, "n": 0}}],
        )
        self.assertEqual(self.check(old, old[:2] + old[3:]), [{"op": "remove", "path": "/2"}])
        changed = [*old[:3], {"id": 4, "n": 40}, old[4]]
        self.assertEqual(self.check(old, changed), [{"op": "replace", "path": "/3/n", "value": 40}])

    def test_removals_inserts_and_changes_at_once(self) -> None:
        old = [{"id": i, "n": i} for i in range(10)]
        new = [{"id": 100, "n": 0}, *old[1:4], {"id": 5, "n": 55}, {"id": 101, "n": 1}, *old[7:], {"id": 102, "n": 2}]
        ops = self.check(old, new)
        self.assertEqual(sorted(op["op"] for op in ops), ["add"] * 3 + ["remove"] * 3 + ["replace"])

    def test_a_reordered_list_is_replaced_whole(self) -> None:
        old = [{"id": 1}, {"id": 2}, {"id": 3}]
        self.assertEqual(self.check(old, old[::-1]), [{"op": "replace", "path": "", "value": old[::-1]}])

    def test_lists_without_ids_go_by_position(self) -> None:
        self.assertEqual(
            self.check([1, 2, 3], [1, 5, 3, 4]),
            [{"op": "replace", "path": "/1", "value": 5}, {"op": "add", "path": "/-", "value": 4}],
        )
        self.check([1, 2, 3, 4], [9])
        self.check([{"id": 1}, {"id": 1}], [{"id": 1}])  # duplicate ids: by position

    def test_objects_members_and_escaped_pointers(self) -> None:
        ops = self.check({"a/b": 1, "c~d": 2, "gone": 3}, {"a/b": 2, "c~d": 2, "new": {"x": [1]}})
        self.assertEqual(
            ops,
            [
                {"op": "remove", "path": "/gone"},
                {"op": "replace", "path": "/a~1b", "value": 2},
                {"op": "add", "path": "/new", "value": {"x": [1]}},
            ],
        )

    def test_a_changed_type_is_replaced(self) -> None:
        self.assertEqual(self.check({"a": [1]}, {"a": {"0": 1}}), [{"op": "replace", "path": "/a", "value": {"0": 1}}])
        self.assertEqual(self.check({"a": 1}, {"a": 1.5}), [{"op": "replace", "path": "/a", "value": 1.5}])

    def test_random_edits_round_trip(self) -> None:
        rng = random.Random(15)
        for _ in range(300):
            old = [{"id": i, "q": rng.randint(0, 3), "tags": [rng.randint(0, 2)]} for i in rng.sample(range(30), 12)]
            new = [dict(item) for item in old if rng.random() > 0.2]
            for item in new:
                if rng.random() < 0.3:
                    item["q"] = rng.randint(0, 3)
            for _ in range(rng.randint(0, 3)):
                new.insert(rng.randint(0, len(new)), {"id": 100 + rng.randint(0, 50), "q": 0, "tags": []})
            if len({item["id"] for item in new}) == len(new):
                self.check({"orders": old, "n": len(old)}, {"orders": new, "n": len(new)})


class ApplyTests(SimpleTestCase):
    def test_every_operation(self) -> None:
        doc = {"a": [1, 2], "b": {"c": 1}}
        self.assertEqual(patches.apply(doc, [{"op": "add", "path": "/a/1", "value": 9}])["a"], [1, 9, 2])
        self.assertEqual(patches.apply(doc, [{"op": "add", "path": "/a/-", "value": 9}])["a"], [1, 2, 9])
        self.assertEqual(
            patches.apply(doc, [{"op": "move", "from": "/b/c", "path": "/d"}]), {"a": [1, 2], "b": {}, "d": 1}
        )
        self.assertEqual(patches.apply(doc, [{"op": "copy", "from": "/a", "path": "/b/a"}])["b"], {"c": 1, "a": [1, 2]})
        self.assertEqual(patches.apply(doc, [{"op": "test", "path": "/b/c", "value": 1}]), doc)
        self.assertEqual(doc, {"a": [1, 2], "b": {"c": 1}})  # not modified

    def test_what_does_not_apply_is_refused(self) -> None:
        doc = {"a": [1, 2]}
        for op in (
            {"op": "remove", "path": "/b"},
            {"op": "replace", "path": "/a/2", "value": 0},
            {"op": "add", "path": "/a/01", "value": 0},
            {"op": "test", "path": "/a/0", "value": 2},
            {"op": "move", "from": "/a", "path": "/a/0"},
            {"op": "frobnicate", "path": "/a"},
            {"op": "add", "path": "a", "value": 0},
        ):
            with self.subTest(op=op), self.assertRaises(patches.PatchError):
                patches.apply(doc, [op])


class PartStateTests(SimpleTestCase):
    def test_an_equal_text_is_no_change_and_a_change_is_diffed_once(self) -> None:
        state = PartState(json.dumps([{"id": 1, "price": "1.00"}], separators=(",", ":")))
        self.assertIsNone(state.settle(state.text))
        new = state.settle('[{"id":1,"price":"2.00"}]')
        assert new is not None and new.previous is state
        self.assertEqual(new.fragment("products"), '{"op":"replace","path":"/products/0/price","value":"2.00"}')
        self.assertIs(new.fragment("products"), new.fragment("products"))

    def test_values_equal_in_python_but_not_in_json_are_replaced(self) -> None:
        new = PartState('{"done":true}').settle('{"done":1}')
        assert new is not None
        self.assertEqual(
            patches.apply({"role": "r", "done": True}, json.loads(f"[{new.fragment(None)}]")), {"role": "r", "done": 1}
        )

    def test_a_type_change_nested_beside_other_changes_is_not_lost(self) -> None:
        # Python's == holds true == 1: the diff misses it, the check after it does not.
        for old, new in (
            ('{"a":{"b":true},"c":1}', '{"a":{"b":1},"c":2}'),
            ('[{"id":1,"n":1.0},{"id":2}]', '[{"id":1,"n":1},{"id":2,"z":1}]'),
        ):
            state = PartState(old).settle(new)
            assert state is not None
            ops = json.loads(f"[{state.fragment('p')}]")
            patched = patches.apply({"role": "r", "p": json.loads(old)}, ops)
            self.assertEqual(json.dumps(patched["p"], separators=(",", ":")), new)

    def test_a_patch_bigger_than_the_document_is_not_offered(self) -> None:
        small = Revision(2, "r", [("n", "1")], ['{"op":"replace","path":"/n","value":1}'])
        self.assertIsNone(small.patch)
        self.assertEqual(
            json.loads(small.whole), {"type": "doc", "resource": "doc", "doc": {"role": "r", "n": 1}, "rev": 2}
        )
        self.assertNotIn("rev", json.loads(small.whole_v1))


class OutboxTests(SimpleTestCase):
    async def test_a_patch_behind_an_unsent_document_becomes_the_whole_document(self) -> None:
        import asyncio

        sent: list[str] = []
        gate = asyncio.Event()

        async def send(text: str) -> None:
            await gate.wait()
            sent.append(text)

        async def close(code: int) -> None:
            pass

        outbox = Outbox(send, close)
        outbox.put_reply("first")  # in flight
        outbox.put_document("whole-1")
        outbox.put_document("patch-2", lambda: "whole-2")
        outbox.put_document("patch-3", lambda: "whole-3")
        gate.set()
        while outbox._task is not None:
            await asyncio.sleep(0)
        self.assertEqual(sent, ["first", "whole-3"])


@override_settings(CHANNEL_LAYERS=IN_MEMORY, PAINTBRUSH={"DOC_COALESCE_SECONDS": 0.05})
class PatchPushTests(TransactionTestCase):
    def setUp(self) -> None:
        self.admin, self.alice, self.bob, self.product = make_shop()

    async def patch_socket(self, user: Any, replica: DocumentReplica) -> WebsocketCommunicator:
        ws = await connect("/ws/doc?patch=1", user=user)
        replica.take(await receive(ws))
        return ws

    async def api_doc(self, user: Any) -> Any:
        def get() -> Any:
            client = Client()
            client.force_login(user)
            return client.get("/api/doc").json()

        return await sync_to_async(get)()

    async def test_the_first_frame_is_whole_with_a_revision_then_patches_follow(self) -> None:
        replica = DocumentReplica()
        ws = await self.patch_socket(self.alice, replica)
        self.assertEqual((replica.rev, replica.wholes), (1, 1))
        order = await sync_to_async(Order.objects.create)(user=self.alice, product=self.product)
        frame = await receive(ws)
        self.assertEqual(frame["rev"], 2)
        self.assertEqual([op["op"] for op in frame["patch"]], ["add"])
        self.assertEqual(frame["patch"][0]["path"], "/orders/0")
        replica.take(frame)
        order.quantity = 4
        await sync_to_async(order.save)()
        frame = await receive(ws)
        self.assertEqual(
            frame["patch"],
            [
                {"op": "replace", "path": "/orders/0/quantity", "value": 4},
                {"op": "replace", "path": "/orders/0/version", "value": 2},
            ],
        )
        replica.take(frame)
        await sync_to_async(order.delete)()
        replica.take(await receive(ws))
        self.assertEqual(replica.doc, await self.api_doc(self.alice))
        self.assertEqual((replica.rev, replica.patches), (4, 3))
        await ws.disconnect()

    async def test_a_price_change_is_one_catalog_assembly_and_one_small_patch_for_everyone(self) -> None:
        customers = [self.alice, self.bob] + [await sync_to_async(make_customer)(f"c{i}") for i in range(4)]
        await sync_to_async(make_products)(20)  # a catalog bigger than the patch
        replicas = {user.pk: DocumentReplica() for user in [self.admin, *customers]}
        sockets = {user.pk: await self.patch_socket(user, replicas[user.pk]) for user in [self.admin, *customers]}
        with mock.patch.object(Part, "assemble", autospec=True, side_effect=Part.assemble) as assemble:
            self.product.price = Decimal("3.50")
            await sync_to_async(self.product.save)()
            frames = {pk: await receive(ws) for pk, ws in sockets.items()}
        # One part assembled, the catalog, for six customers and the admin.
        self.assertEqual([call.args[0] for call in assemble.call_args_list], [catalog])
        texts = {json.dumps(frame["patch"]) for frame in frames.values()}
        self.assertEqual(
            texts,
            {
                json.dumps(
                    [
                        {"op": "replace", "path": "/products/0/price", "value": "3.50"},
                        {"op": "replace", "path": "/products/0/version", "value": 2},
                    ]
                )
            },
        )
        for user in [self.admin, *customers]:
            replicas[user.pk].take(frames[user.pk])
            self.assertEqual(replicas[user.pk].doc, await self.api_doc(user))
            await sockets[user.pk].disconnect()

    async def test_an_order_change_assembles_only_that_customers_orders_and_the_admins(self) -> None:
        admin, alice, bob = DocumentReplica(), DocumentReplica(), DocumentReplica()
        sockets = [await self.patch_socket(self.admin, admin), await self.patch_socket(self.alice, alice)]
        bobs = await self.patch_socket(self.bob, bob)
        queries = metrics.DOCUMENT_QUERIES.labels("customer")._value.get()
        with mock.patch.object(Part, "assemble", autospec=True, side_effect=Part.assemble) as assemble:
            await sync_to_async(Order.objects.create)(user=self.alice, product=self.product, quantity=2)
            admin.take(await receive(sockets[0]))
            alice.take(await receive(sockets[1]))
        admin_role, customer_role = roles.by_name("admin"), roles.by_name("customer")
        assert admin_role is not None and customer_role is not None
        assembled = [(call.args[0], call.args[1]) for call in assemble.call_args_list]
        self.assertCountEqual(
            assembled, [(admin_role.parts["orders"], None), (customer_role.parts["orders"], self.alice.pk)]
        )
        self.assertEqual(metrics.DOCUMENT_QUERIES.labels("customer")._value.get() - queries, 1)
        self.assertTrue(await bobs.receive_nothing(timeout=0.2))  # nothing of alice's reaches bob
        self.assertEqual(admin.doc, await self.api_doc(self.admin))
        self.assertEqual(alice.doc, await self.api_doc(self.alice))
        for ws in [*sockets, bobs]:
            await ws.disconnect()

    async def test_patch_and_whole_document_sockets_share_a_group(self) -> None:
        replica = DocumentReplica()
        patched = await self.patch_socket(self.alice, replica)
        whole = await connect("/ws/doc", user=self.alice)
        first = await receive(whole)
        self.assertNotIn("rev", first)
        self.assertEqual(first["doc"], replica.doc)
        await sync_to_async(Order.objects.create)(user=self.alice, product=self.product)
        replica.take(await receive(patched))
        pushed = await receive(whole)
        self.assertEqual(set(pushed), {"type", "resource", "doc"})
        self.assertEqual(pushed["doc"], replica.doc)
        await patched.disconnect()
        await whole.disconnect()

    async def test_opendoc_with_patch_on_the_multiplexed_socket_and_reopening(self) -> None:
        ws = await connect(user=self.alice)
        await ws.send_json_to({"action": "opendoc", "resource": "doc", "patch": True})
        self.assertEqual(await receive(ws), {"type": "opened", "resource": "doc"})
        replica = DocumentReplica()
        replica.take(await receive(ws))
        await sync_to_async(Order.objects.create)(user=self.alice, product=self.product)
        replica.take(await receive(ws))
        # A client that lost track re-opens: the whole document, at the current revision.
        await ws.send_json_to({"action": "opendoc", "resource": "doc", "patch": True})
        self.assertEqual(await receive(ws), {"type": "opened", "resource": "doc"})
        again = await receive(ws)
        self.assertEqual((again["rev"], again["doc"]), (replica.rev, replica.doc))
        replica.take(again)
        await sync_to_async(Order.objects.create)(user=self.alice, product=self.product)
        self.assertIn("patch", replica_frame := await receive(ws))
        replica.take(replica_frame)
        self.assertEqual(replica.doc, await self.api_doc(self.alice))
        await ws.disconnect()

    async def test_a_change_that_alters_no_document_sends_no_patch(self) -> None:
        replica = DocumentReplica()
        ws = await self.patch_socket(self.alice, replica)
        await sync_to_async(self.alice.save)()  # her user part is assembled again, unchanged
        await sync_to_async(Order.objects.create)(user=self.alice, product=self.product)
        frame = await receive(ws)  # the order's, with the next revision: nothing came before it
        self.assertEqual((frame["rev"], frame["patch"][0]["path"]), (2, "/orders/0"))
        await ws.disconnect()

    async def test_after_the_layer_may_have_lost_notices_patches_still_converge(self) -> None:
        from django.db import connection

        replica = DocumentReplica()
        ws = await self.patch_socket(self.alice, replica)

        def rename_unobserved() -> None:
            with connection.cursor() as cursor:
                cursor.execute("UPDATE demo_product SET name = %s WHERE id = %s", ["Unseen", self.product.pk])

        await sync_to_async(rename_unobserved)()
        await get_hub(get_channel_layer())._recover()  # resyncs every member: every part is read again
        frame = await receive(ws)
        self.assertEqual(frame["patch"], [{"op": "replace", "path": "/products/0/name", "value": "Unseen"}])
        replica.take(frame)
        self.assertEqual(replica.doc, await self.api_doc(self.alice))
        await ws.disconnect()

    async def test_rounds_of_writes_by_many_customers_converge(self) -> None:
        customers = [self.alice, self.bob] + [await sync_to_async(make_customer)(f"c{i}") for i in range(3)]
        products = [self.product] + await sync_to_async(make_products)(20)
        watchers = [self.admin, *customers]
        replicas = [DocumentReplica() for _ in watchers]
        sockets = [await self.patch_socket(user, replica) for user, replica in zip(watchers, replicas, strict=True)]
        rng = random.Random(4)

        def writes() -> None:
            for _ in range(5):
                kind, orders = rng.random(), list(Order.objects.order_by("id"))
                if kind < 0.4 or not orders:
                    user, product = rng.choice(customers), rng.choice(products)
                    Order.objects.create(user=user, product=product, quantity=rng.randint(1, 9))
                elif kind < 0.6:
                    rng.choice(orders).delete()
                elif kind < 0.8:
                    order = rng.choice(orders)
                    order.quantity += 1
                    order.save()
                else:
                    product = Product.objects.get(pk=rng.choice(products).pk)
                    product.price += 1
                    product.save()

        for _ in range(8):
            await sync_to_async(writes)()
            for user, replica, ws in zip(watchers, replicas, sockets, strict=True):
                expected = await self.api_doc(user)
                while replica.doc != expected:
                    replica.take(await receive(ws))
        for ws in sockets:
            self.assertTrue(await ws.receive_nothing(timeout=0.1))
            await ws.disconnect()
        self.assertGreater(sum(replica.patches for replica in replicas), 8)


def make_products(count: int) -> list[Product]:
    return [Product.objects.create(name=f"p{i}", price=Decimal(i)) for i in range(count)]


def make_customer(name: str) -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user(name, f"{name}@example.com")


class SimpleRoleTests(SimpleTestCase):
    """A role that declares one assemble still works: its body is one part."""

    def test_the_body_is_one_part_spread_into_the_document(self) -> None:
        class Plain(Role):
            name = "plain"
            reads = (Product,)

            def applies_to(self, user: Any) -> bool:
                return True

            def assemble(self, user_id: Any) -> dict[str, Any]:
                return {"n": 1, "items": [{"id": 1}]}

        role = Plain()
        ((name, part),) = role.layout
        self.assertIsNone(name)
        self.assertEqual(role.document(role.group()), {"role": "plain", "n": 1, "items": [{"id": 1}]})
        self.assertIs(part.affected(Product()), EVERY)
        self.assertEqual(part.affected(Order()), [])

    def test_parts_say_what_they_read_and_whose_they_are(self) -> None:
        shared = Shared(lambda: [], reads=[Product])
        mine = PerUser(lambda user_id: [], reads=[Order], users=lambda order: [order.user_id])
        self.assertFalse(shared.per_user)
        self.assertTrue(mine.per_user)
        self.assertEqual(mine.affected(Order(user_id=7)), [7])
        self.assertEqual(mine.affected(Product()), ())
        self.assertEqual(repr(shared.affected(Product())), "EVERY")


class DetachRaceTests(SimpleTestCase):
    """What a group's next socket gets when its last one left during a read."""

    async def test_a_read_begun_before_the_group_left_is_not_the_next_socket_s_document(self) -> None:
        import asyncio
        import threading

        from channels.layers import InMemoryChannelLayer

        from paintbrush.documents.hub import DocHub

        value = {"n": 1}
        reading, release = threading.Event(), threading.Event()

        def assemble(user_id: Any) -> Any:
            seen = dict(value)
            if not release.is_set():
                reading.set()
                release.wait(5)
            return seen

        class Slow(Role):
            name = "slow"
            per_user = True
            parts = {"p": PerUser(assemble)}

        class Socket:
            revision: Any = None

            def push_document(self, revision: Any) -> None:
                self.revision = revision

        role, hub = Slow(), DocHub(InMemoryChannelLayer())
        group = role.group(5)
        first, second = Socket(), Socket()
        attaching = asyncio.ensure_future(hub.attach(first, role, group))
        await asyncio.to_thread(reading.wait, 5)  # the first read is under way
        leaving = asyncio.ensure_future(hub.detach(first, role, group))
        await asyncio.sleep(0)
        value["n"] = 2  # committed after the read began; its notice reaches no one here
        joining = asyncio.ensure_future(hub.attach(second, role, group))
        release.set()
        await asyncio.gather(attaching, leaving, joining)
        self.assertEqual(json.loads(second.revision.whole)["doc"], {"role": "slow", "p": {"n": 2}})
        await hub.detach(second, role, group)
        self.assertEqual((hub.documents, hub.sockets, hub.shared_refs), ({}, {}, {}))


class DocumentSocketTests(SimpleTestCase):
    def test_a_detached_socket_takes_no_push(self) -> None:
        from paintbrush.documents.consumers import DocumentSocketMixin

        class Outbox:
            def __init__(self) -> None:
                self.sent: list[str] = []

            def put_document(self, text: str, whole: Any = None) -> None:
                self.sent.append(text)

        socket = DocumentSocketMixin()
        socket.outbox = Outbox()  # type: ignore[assignment]
        revision = Revision(3, "r", [("n", "1")], None)
        socket.push_document(revision)  # between closedoc and the hub letting it go
        self.assertEqual(socket.outbox.sent, [])  # type: ignore[attr-defined]
        socket.doc_group = roles.by_name("customer").group(1)  # type: ignore[union-attr]
        socket.push_document(revision)
        self.assertEqual(len(socket.outbox.sent), 1)  # type: ignore[attr-defined]


class SimpleRoleHubTests(SimpleTestCase):
    """A role with one assemble() is one part spread into the document: patched too."""

    async def test_its_body_is_patched_at_the_top_of_the_document(self) -> None:
        from channels.layers import InMemoryChannelLayer

        from paintbrush.documents.hub import DocHub

        body: dict[str, Any] = {"items": [{"id": i, "n": i} for i in range(1, 31)], "title": "t"}

        class Plain(Role):
            name = "plain"
            per_user = True
            reads = (Product,)

            def applies_to(self, user: Any) -> bool:
                return True

            def assemble(self, user_id: Any) -> dict[str, Any]:
                copied: dict[str, Any] = json.loads(json.dumps(body))
                return copied

        class Socket:
            def __init__(self) -> None:
                self.replica = DocumentReplica()

            def push_document(self, revision: Any) -> None:
                self.replica.take(json.loads(revision.patch or revision.whole))

        role, hub, socket = Plain(), DocHub(InMemoryChannelLayer()), Socket()
        group = role.group(1)
        await hub.attach(socket, role, group)
        body["items"][1]["n"] = 20
        del body["title"]
        hub._on_notice(group, "")  # what the writer sends for a role without parts
        await hub.flush()
        self.assertEqual(socket.replica.doc, {"role": "plain", "items": body["items"]})
        self.assertEqual(socket.replica.patches, 1)
        await hub.detach(socket, role, group)
