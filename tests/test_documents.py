"""Role documents (docs/protocol.md, section 3): shapes per role, delivery over GET /api/doc,
/ws/doc and opendoc "doc", isolation between customers, coalescing, query counts."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any
from unittest import mock

from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import TestCase, TransactionTestCase, override_settings

from paintbrush.documents import Part, roles
from paintbrush.documents.hub import DocHub, Revision
from paintbrush.groups import access_group, document_group, role_group
from paintbrush.hub import Hub
from paintbrush.testing import communicator, connect, receive, session_cookie, subscribe
from project.demo.live import catalog
from project.demo.models import Order, Product

from .test_shop import make_shop
from .utils import IN_MEMORY

User = get_user_model()


class DocumentShapeTests(TestCase):
    def setUp(self) -> None:
        self.admin, self.alice, self.bob, self.product = make_shop()
        self.mine = Order.objects.create(user=self.alice, product=self.product)
        self.theirs = Order.objects.create(user=self.bob, product=self.product, quantity=3)

    def test_signed_out_is_403(self) -> None:
        self.assertEqual(self.client.get("/api/doc").status_code, 403)

    def test_the_admin_document_holds_every_user_order_and_product(self) -> None:
        self.client.force_login(self.admin)
        doc = self.client.get("/api/doc/").json()
        self.assertEqual(set(doc), {"role", "users", "orders", "products"})
        self.assertEqual(doc["role"], "admin")
        self.assertEqual(
            doc["users"][1], {"id": self.alice.pk, "username": "alice", "email": "alice@example.com", "is_staff": False}
        )
        self.assertEqual([u["username"] for u in doc["users"]], ["admin", "alice", "bob"])
        self.assertEqual(doc["products"], self.client.get("/api/products").json())
        self.assertEqual(doc["orders"], self.client.get("/api/orders").json())
        self.assertEqual(len(doc["orders"]), 2)

    def test_a_customer_document_holds_only_their_user_and_orders(self) -> None:
        self.client.force_login(self.alice)
        doc = self.client.get("/api/doc").json()
        self.assertEqual(set(doc), {"role", "user", "orders", "products"})
        self.assertEqual(doc["role"], "customer")
        self.assertEqual(
            doc["user"], {"id": self.alice.pk, "username": "alice", "email": "alice@example.com", "is_staff": False}
        )
        self.assertEqual(doc["orders"], self.client.get("/api/orders").json())
        self.assertEqual([o["id"] for o in doc["orders"]], [self.mine.pk])
        self.assertEqual(doc["products"], [{"id": self.product.pk, "name": "Brush", "price": "9.99", "version": 1}])
        self.assertNotIn("bob", json.dumps(doc))

    def test_assembling_takes_three_queries_whatever_the_number_of_rows(self) -> None:
        admin_role, customer_role = roles.by_name("admin"), roles.by_name("customer")
        assert admin_role is not None and customer_role is not None
        for many in (False, True):
            if many:
                Product.objects.bulk_create(Product(name=f"p{i}", price=Decimal(i)) for i in range(30))
                Order.objects.bulk_create(Order(user=self.alice, product=self.product) for _ in range(30))
                User.objects.bulk_create(User(username=f"u{i}") for i in range(30))
            with self.assertNumQueries(3):
                admin_role.document(admin_role.group())
            with self.assertNumQueries(3):
                customer_role.document(customer_role.group(self.alice.pk))


@override_settings(CHANNEL_LAYERS=IN_MEMORY, PAINTBRUSH={"DOC_COALESCE_SECONDS": 0.05})
class DocumentPushTests(TransactionTestCase):
    def setUp(self) -> None:
        self.admin, self.alice, self.bob, self.product = make_shop()

    async def doc_socket(self, user: Any) -> tuple[WebsocketCommunicator, dict[str, Any]]:
        ws = await connect("/ws/doc", user=user)
        frame = await receive(ws)
        self.assertEqual(frame["type"], "doc")
        return ws, frame["doc"]

    async def order(self, user: Any, **fields: Any) -> Order:
        return await sync_to_async(Order.objects.create)(user=user, product=self.product, **fields)

    async def test_a_signed_out_handshake_is_refused(self) -> None:
        connected, _ = await (await communicator("/ws/doc")).connect()
        self.assertFalse(connected)

    async def test_the_current_document_comes_at_once_then_one_after_each_change(self) -> None:
        ws, doc = await self.doc_socket(self.alice)
        self.assertEqual((doc["role"], doc["orders"]), ("customer", []))
        order = await self.order(self.alice)
        doc = (await receive(ws))["doc"]
        self.assertEqual([o["id"] for o in doc["orders"]], [order.pk])
        order.quantity = 5
        await sync_to_async(order.save)()
        doc = (await receive(ws))["doc"]
        self.assertEqual(doc["orders"][0]["quantity"], 5)
        await ws.disconnect()

    async def test_the_admin_sees_every_customers_orders(self) -> None:
        ws, doc = await self.doc_socket(self.admin)
        self.assertEqual(doc["role"], "admin")
        await self.order(self.bob)
        doc = (await receive(ws))["doc"]
        self.assertEqual([o["user"] for o in doc["orders"]], [self.bob.pk])
        await ws.disconnect()

    async def test_a_customer_never_receives_anything_of_another_customer(self) -> None:
        alice, _ = await self.doc_socket(self.alice)
        heard: list[str] = []
        original = Hub._deliver

        async def spy(hub: Hub, group: str, text: str) -> None:
            heard.append(group)
            await original(hub, group, text)

        with mock.patch.object(Hub, "_deliver", spy):
            bobs = await self.order(self.bob)
            bobs.status = "paid"
            await sync_to_async(bobs.save)()
            await sync_to_async(bobs.delete)()
            self.bob.email = "bob@elsewhere.example"
            await sync_to_async(self.bob.save)()
            mine = await self.order(self.alice)
            frame = await alice.receive_from(timeout=5)
        # No notice for bob's changes reached this process: the only one is for hers.
        self.assertEqual(heard, [document_group("customer", self.alice.pk)])
        self.assertNotIn("bob", frame)
        self.assertEqual([o["id"] for o in json.loads(frame)["doc"]["orders"]], [mine.pk])
        await alice.disconnect()

    async def test_a_product_change_reaches_every_connected_customer(self) -> None:
        alice, _ = await self.doc_socket(self.alice)
        bob, _ = await self.doc_socket(self.bob)
        self.product.price = Decimal("1.50")
        await sync_to_async(self.product.save)()
        for ws in (alice, bob):
            self.assertEqual((await receive(ws))["doc"]["products"][0]["price"], "1.50")
            await ws.disconnect()

    async def test_a_change_that_alters_no_document_pushes_nothing(self) -> None:
        alice, _ = await self.doc_socket(self.alice)
        await sync_to_async(self.alice.save)()  # affects her group, but her document is the same
        mine = await self.order(self.alice)
        # The next frame is the order's push: the no-op sent nothing before it.
        self.assertEqual([o["id"] for o in (await receive(alice))["doc"]["orders"]], [mine.pk])
        await alice.disconnect()

    async def test_one_transaction_is_one_push(self) -> None:
        alice, _ = await self.doc_socket(self.alice)

        def burst() -> None:
            with transaction.atomic():
                for _ in range(20):
                    Order.objects.create(user=self.alice, product=self.product)

        await sync_to_async(burst)()
        self.assertEqual(len((await receive(alice))["doc"]["orders"]), 20)
        marker = await self.order(self.alice, quantity=7)
        # The very next push is the marker's: the transaction gave exactly one.
        self.assertEqual((await receive(alice))["doc"]["orders"][-1]["id"], marker.pk)
        await alice.disconnect()

    async def test_a_burst_of_commits_coalesces_into_a_few_pushes_the_last_complete(self) -> None:
        alice, _ = await self.doc_socket(self.alice)
        with mock.patch.object(Part, "assemble", autospec=True, side_effect=Part.assemble) as assemble:
            for _ in range(20):
                await self.order(self.alice)
            pushes = 0
            while True:
                pushes += 1
                doc = (await receive(alice))["doc"]
                if len(doc["orders"]) == 20:
                    break
        self.assertLessEqual(pushes, 5)
        self.assertEqual(assemble.call_count, pushes)
        await alice.disconnect()

    async def test_two_sockets_of_one_customer_share_one_assembly_per_change(self) -> None:
        first, _ = await self.doc_socket(self.alice)
        second, _ = await self.doc_socket(self.alice)
        with mock.patch.object(Part, "assemble", autospec=True, side_effect=Part.assemble) as assemble:
            await self.order(self.alice)
            one, two = await first.receive_from(timeout=5), await second.receive_from(timeout=5)
        self.assertEqual(one, two)
        self.assertEqual(assemble.call_count, 1)
        await first.disconnect()
        await second.disconnect()

    async def test_an_order_handed_to_another_customer_leaves_the_first_document(self) -> None:
        order = await self.order(self.alice)
        alice, doc = await self.doc_socket(self.alice)
        bob, _ = await self.doc_socket(self.bob)
        self.assertEqual(len(doc["orders"]), 1)
        order.user = self.bob
        await sync_to_async(order.save)()
        self.assertEqual((await receive(alice))["doc"]["orders"], [])
        self.assertEqual([o["id"] for o in (await receive(bob))["doc"]["orders"]], [order.pk])
        await alice.disconnect()
        await bob.disconnect()

    async def test_more_sockets_of_a_group_reuse_its_current_document(self) -> None:
        cookie = await session_cookie(self.admin)
        first = await connect("/ws/doc", headers=[(b"cookie", cookie)])
        doc = await receive(first)
        with mock.patch.object(Part, "assemble", autospec=True, side_effect=Part.assemble) as assemble:
            others = [await connect("/ws/doc", headers=[(b"cookie", cookie)]) for _ in range(5)]
            for ws in others:
                self.assertEqual(await receive(ws), doc)
        self.assertEqual(assemble.call_count, 0)
        for ws in [first, *others]:
            await ws.disconnect()

    async def test_sockets_attaching_at_once_leave_nothing_behind(self) -> None:
        from channels.layers import InMemoryChannelLayer

        class Slow(InMemoryChannelLayer):
            # Redis answers group_add after a round trip: other attaches run meanwhile.
            async def group_add(self, group: str, channel: str) -> None:
                await asyncio.sleep(0.01)
                await super().group_add(group, channel)

        class Socket:
            def push_document(self, revision: Revision) -> None:
                self.revision = revision

        layer = Slow()
        hub = DocHub(layer)
        role = roles.by_name("customer")
        assert role is not None
        group = role.group(self.alice.pk)
        sockets = [Socket() for _ in range(3)]
        await asyncio.gather(*(hub.attach(s, role, group) for s in sockets))
        self.assertEqual(hub.role_refs, {"customer": 1})
        self.assertEqual(list(hub.shared), [catalog])  # read once for the three
        await asyncio.gather(*(hub.detach(s, role, group) for s in sockets))
        self.assertEqual((hub.role_refs, hub.sockets, layer.groups), ({}, {}, {}))
        self.assertEqual((hub.shared, hub.shared_refs, hub.documents), ({}, {}, {}))

    async def test_opendoc_doc_on_the_multiplexed_socket(self) -> None:
        ws = await connect(user=self.alice)
        await subscribe(ws, "doc")
        self.assertEqual((await receive(ws))["doc"]["role"], "customer")
        order = await self.order(self.alice)
        self.assertEqual((await receive(ws))["doc"]["orders"][0]["id"], order.pk)
        await ws.send_json_to({"action": "closedoc", "resource": "doc"})
        self.assertEqual(await receive(ws), {"type": "closed", "resource": "doc"})
        await ws.disconnect()

    async def test_opendoc_doc_signed_out_is_forbidden(self) -> None:
        ws = await connect()
        await ws.send_json_to({"action": "opendoc", "resource": "doc"})
        self.assertEqual((await receive(ws))["error"], "forbidden")
        await ws.disconnect()

    async def test_nothing_stays_in_the_channel_layer_after_the_last_document_socket(self) -> None:
        from channels.layers import get_channel_layer

        alice, _ = await self.doc_socket(self.alice)
        admin, _ = await self.doc_socket(self.admin)
        layer = get_channel_layer()
        self.assertEqual(
            set(layer.groups),
            {
                document_group("customer", self.alice.pk),
                role_group("customer"),
                document_group("admin"),
                access_group(self.alice.pk),
                access_group(self.admin.pk),
            },
        )
        await alice.disconnect()
        await admin.disconnect()
        self.assertEqual(layer.groups, {})

    async def test_a_user_joining_staff_is_disconnected_from_their_customer_document(self) -> None:
        ws, doc = await self.doc_socket(self.alice)
        self.assertEqual(doc["role"], "customer")
        self.alice.is_staff = True
        await sync_to_async(self.alice.save)()
        self.assertEqual(await ws.receive_output(timeout=5), {"type": "websocket.close", "code": 4003})
        await ws.disconnect()
        again, doc = await self.doc_socket(self.alice)
        self.assertEqual(doc["role"], "admin")
        await again.disconnect()

    async def test_after_a_channel_layer_outage_documents_are_assembled_again(self) -> None:
        from channels.layers import get_channel_layer

        from paintbrush.hub import get_hub

        ws, _ = await self.doc_socket(self.alice)
        # A change whose notice never came (written behind Django's back, as during
        # an outage): the document is stale until the hub learns it may be.
        await sync_to_async(Product.objects.filter(pk=self.product.pk).update)(name="Renamed")  # publishes...
        self.assertEqual((await receive(ws))["doc"]["products"][0]["name"], "Renamed")  # ...as a bulk write
        from django.db import connection

        def rename_unobserved() -> None:
            with connection.cursor() as cursor:
                cursor.execute("UPDATE demo_product SET name = %s WHERE id = %s", ["Unseen", self.product.pk])

        await sync_to_async(rename_unobserved)()
        self.assertTrue(await ws.receive_nothing(timeout=0.2))
        hub = get_hub(get_channel_layer())
        await hub._recover()
        self.assertEqual((await receive(ws))["doc"]["products"][0]["name"], "Unseen")
        await ws.disconnect()
