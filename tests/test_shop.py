"""The shop resources (docs/protocol.md, section 4): products and orders, with their row
rules over REST and over /ws. What a user's access change does to their sockets is in
test_access, what a save reads in test_writes; both build on ``make_shop``."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.test import TestCase, TransactionTestCase, override_settings

from paintbrush.testing import connect, receive, subscribe
from project.demo.models import Order, Product

from .utils import IN_MEMORY

User = get_user_model()


def make_shop() -> tuple[Any, Any, Any, Product]:
    admin = User.objects.create_user("admin", "admin@example.com", is_staff=True)
    alice = User.objects.create_user("alice", "alice@example.com")
    bob = User.objects.create_user("bob", "bob@example.com")
    product = Product.objects.create(name="Brush", price=Decimal("9.99"))
    return admin, alice, bob, product


class OrderRestTests(TestCase):
    def setUp(self) -> None:
        self.admin, self.alice, self.bob, self.product = make_shop()

    def as_user(self, user: Any) -> None:
        self.client.force_login(user)

    def order(self, user: Any, **fields: Any) -> Order:
        return Order.objects.create(user=user, product=self.product, **fields)

    def test_signed_out_requests_are_403(self) -> None:
        for path in ("/api/orders", "/api/products"):
            self.assertEqual(self.client.get(path).status_code, 403)

    def test_a_customer_creates_an_order_for_themselves(self) -> None:
        self.as_user(self.alice)
        response = self.client.post(
            "/api/orders",
            {"product": self.product.pk, "quantity": 2, "user": self.bob.pk},
            content_type="application/json",
        )
        self.assertEqual(response.status_code, 201, response.content)
        body = response.json()
        self.assertEqual(
            (body["user"], body["status"], body["quantity"], body["version"]), (self.alice.pk, "pending", 2, 1)
        )

    def test_quantity_must_be_at_least_one(self) -> None:
        self.as_user(self.alice)
        response = self.client.post(
            "/api/orders", {"product": self.product.pk, "quantity": 0}, content_type="application/json"
        )
        self.assertEqual(response.status_code, 400)
        self.assertIn("quantity", response.json())

    def test_a_customer_lists_and_reads_only_their_own_orders(self) -> None:
        mine, theirs = self.order(self.alice), self.order(self.bob)
        self.as_user(self.alice)
        self.assertEqual([o["id"] for o in self.client.get("/api/orders").json()], [mine.pk])
        self.assertEqual(self.client.get(f"/api/orders/{theirs.pk}").status_code, 404)
        self.assertEqual(
            self.client.patch(f"/api/orders/{theirs.pk}", {"quantity": 5}, content_type="application/json").status_code,
            404,
        )
        self.assertEqual(self.client.delete(f"/api/orders/{theirs.pk}").status_code, 404)

    def test_a_customer_changes_quantity_or_deletes_only_while_pending(self) -> None:
        pending, shipped = self.order(self.alice), self.order(self.alice, status="shipped")
        self.as_user(self.alice)
        ok = self.client.patch(f"/api/orders/{pending.pk}", {"quantity": 3}, content_type="application/json")
        self.assertEqual((ok.status_code, ok.json()["quantity"]), (200, 3))
        refused = self.client.patch(f"/api/orders/{shipped.pk}", {"quantity": 3}, content_type="application/json")
        self.assertEqual(refused.status_code, 403)
        self.assertEqual(self.client.delete(f"/api/orders/{shipped.pk}").status_code, 403)
        self.assertEqual(self.client.delete(f"/api/orders/{pending.pk}").status_code, 204)

    def test_only_staff_change_the_status(self) -> None:
        order = self.order(self.alice)
        self.as_user(self.alice)
        refused = self.client.patch(f"/api/orders/{order.pk}", {"status": "shipped"}, content_type="application/json")
        self.assertEqual(refused.status_code, 403)
        order.refresh_from_db()
        self.assertEqual(order.status, "pending")
        self.as_user(self.admin)
        ok = self.client.patch(f"/api/orders/{order.pk}", {"status": "shipped"}, content_type="application/json")
        self.assertEqual((ok.status_code, ok.json()["status"]), (200, "shipped"))

    def test_a_customer_may_not_change_the_product_of_an_order(self) -> None:
        order = self.order(self.alice)
        other = Product.objects.create(name="Easel", price=Decimal("89.00"))
        self.as_user(self.alice)
        response = self.client.patch(f"/api/orders/{order.pk}", {"product": other.pk}, content_type="application/json")
        self.assertEqual(response.status_code, 403)
        order.refresh_from_db()
        self.assertEqual((order.product_id, order.version), (self.product.pk, 1))

    def test_staff_see_every_order(self) -> None:
        self.order(self.alice), self.order(self.bob)
        self.as_user(self.admin)
        self.assertEqual(len(self.client.get("/api/orders").json()), 2)

    def test_products_are_read_by_the_signed_in_and_written_by_staff(self) -> None:
        self.as_user(self.alice)
        listed = self.client.get("/api/products").json()
        self.assertEqual(listed, [{"id": self.product.pk, "name": "Brush", "price": "9.99", "version": 1}])
        body = {"name": "Easel", "price": "89.00"}
        self.assertEqual(self.client.post("/api/products", body, content_type="application/json").status_code, 403)
        self.as_user(self.admin)
        self.assertEqual(self.client.post("/api/products", body, content_type="application/json").status_code, 201)


@override_settings(CHANNEL_LAYERS=IN_MEMORY)
class OrderEventTests(TransactionTestCase):
    def setUp(self) -> None:
        self.admin, self.alice, self.bob, self.product = make_shop()

    async def order(self, user: Any, **fields: Any) -> Order:
        return await sync_to_async(Order.objects.create)(user=user, product=self.product, **fields)

    async def test_a_signed_out_socket_may_not_subscribe_to_shop_resources(self) -> None:
        ws = await connect()
        for name in ("orders", "products"):
            await ws.send_json_to({"action": "opendoc", "resource": name})
            self.assertEqual((await receive(ws))["error"], "forbidden")
        await ws.disconnect()

    async def test_a_customer_receives_events_about_their_own_orders_only(self) -> None:
        alice, staff = await connect(user=self.alice), await connect(user=self.admin)
        self.assertEqual(await subscribe(alice, "orders", snapshot=True), [])
        await subscribe(staff, "orders")
        theirs = await self.order(self.bob)
        theirs.quantity = 4
        await sync_to_async(theirs.save)()
        await sync_to_async(theirs.delete)()
        mine = await self.order(self.alice)
        # Staff saw all four events; alice's next frame is her own order's create.
        staff_actions = [(await receive(staff))["action"] for _ in range(4)]
        self.assertEqual(staff_actions, ["create", "update", "delete", "create"])
        event = await receive(alice)
        self.assertEqual(
            (event["action"], event["item"]["id"], event["item"]["user"]), ("create", mine.pk, self.alice.pk)
        )
        mine.quantity = 2
        await sync_to_async(mine.save)()
        self.assertEqual((await receive(alice))["fields"], {"quantity": 2})
        await alice.disconnect()
        await staff.disconnect()

    async def test_a_customers_snapshot_lists_only_their_orders(self) -> None:
        mine = await self.order(self.alice)
        await self.order(self.bob)
        alice = await connect(user=self.alice)
        items = await subscribe(alice, "orders", snapshot=True)
        self.assertEqual([i["id"] for i in items], [mine.pk])
        await alice.disconnect()

    async def test_an_order_handed_to_another_user_is_a_delete_for_one_and_a_create_for_the_other(self) -> None:
        order = await self.order(self.alice)
        alice, bob = await connect(user=self.alice), await connect(user=self.bob)
        await subscribe(alice, "orders")
        await subscribe(bob, "orders")
        order.user = self.bob
        await sync_to_async(order.save)()
        gone, came = await receive(alice), await receive(bob)
        self.assertEqual((gone["action"], gone["id"], gone["version"]), ("delete", order.pk, 2))
        self.assertEqual((came["action"], came["item"]["user"], came["item"]["version"]), ("create", self.bob.pk, 2))
        await alice.disconnect()
        await bob.disconnect()

    async def test_a_delete_through_an_out_of_date_instance_reaches_the_current_owner(self) -> None:
        order = await self.order(self.alice)
        stale = await sync_to_async(Order.objects.get)(pk=order.pk)  # still alice's
        order.user = self.bob
        await sync_to_async(order.save)()
        alice, bob = await connect(user=self.alice), await connect(user=self.bob)
        await subscribe(alice, "orders")
        await subscribe(bob, "orders")
        await sync_to_async(stale.delete)()
        deleted = await receive(bob)
        self.assertEqual((deleted["action"], deleted["id"], deleted["version"]), ("delete", order.pk, 3))
        # Alice, who no longer owns it, hears nothing: her next frame is her own order.
        mine = await self.order(self.alice)
        self.assertEqual((await receive(alice))["item"]["id"], mine.pk)
        await alice.disconnect()
        await bob.disconnect()
