"""Access (paintbrush.access): when a user's access changes (staff flag, groups, group
permissions, permissions, sign-out, deletion) their sockets close with 4003 and reconnect
under the new rules; a change committed just before a socket listened is seen; after an
outage only the sockets whose user's access changed unseen are closed; a save that keeps
the access keeps the socket."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.test import TransactionTestCase, override_settings

from paintbrush.testing import connect, receive, subscribe
from project.demo.models import Order

from .test_shop import make_shop
from .utils import IN_MEMORY

User = get_user_model()


@override_settings(CHANNEL_LAYERS=IN_MEMORY)
class AccessChangeTests(TransactionTestCase):
    def setUp(self) -> None:
        self.admin, self.alice, self.bob, self.product = make_shop()

    async def order(self, user: Any, **fields: Any) -> Order:
        return await sync_to_async(Order.objects.create)(user=user, product=self.product, **fields)

    async def test_a_user_whose_access_changes_is_disconnected_and_reconnects_under_the_new_rules(self) -> None:
        staff = await connect(user=self.admin)
        await subscribe(staff, "orders")
        self.admin.is_staff = False
        await sync_to_async(self.admin.save)()
        self.assertEqual(await staff.receive_output(timeout=5), {"type": "websocket.close", "code": 4003})
        await staff.disconnect()
        # Reconnected, the former staff user sees only their own orders.
        again = await connect(user=self.admin)
        self.assertEqual(await subscribe(again, "orders", snapshot=True), [])
        await sync_to_async(Order.objects.create)(user=self.bob, product=self.product)
        mine = await self.order(self.admin)
        self.assertEqual((await receive(again))["item"]["id"], mine.pk)
        await again.disconnect()

    async def test_a_change_just_before_the_socket_listened_is_seen(self) -> None:
        from channels.testing import WebsocketCommunicator

        from paintbrush.consumers import LiveConsumer
        from paintbrush.documents.consumers import DocConsumer

        stale = await sync_to_async(User.objects.get)(pk=self.admin.pk)  # loaded as staff
        await sync_to_async(User.objects.filter(pk=self.admin.pk).update)(is_staff=False)
        live = WebsocketCommunicator(LiveConsumer.as_asgi(), "/ws")
        live.scope["user"] = stale
        self.assertTrue((await live.connect())[0])
        await subscribe(live, "orders")
        await self.order(self.bob)
        mine = await self.order(self.admin)
        self.assertEqual((await receive(live))["item"]["id"], mine.pk)  # not bob's
        await live.disconnect()
        stale.is_staff = True
        doc = WebsocketCommunicator(DocConsumer.as_asgi(), "/ws/doc")
        doc.scope["user"] = stale
        self.assertTrue((await doc.connect())[0])
        self.assertEqual((await receive(doc))["doc"]["role"], "customer")
        await doc.disconnect()

    async def test_after_an_outage_only_sockets_whose_access_changed_unseen_are_closed(self) -> None:
        from channels.layers import get_channel_layer

        from paintbrush.hub import get_hub

        alice, admin = await connect(user=self.alice), await connect(user=self.admin)
        await subscribe(alice, "orders")
        await subscribe(admin, "orders")
        # Demoted while the channel layer was down: no notice ever reaches the socket.
        await sync_to_async(User.objects.filter(pk=self.admin.pk).update)(is_staff=False)
        hub = get_hub(get_channel_layer())
        await hub._recover()
        self.assertEqual((await receive(alice))["type"], "resync")  # alice stays, and resyncs
        frames = [await admin.receive_output(timeout=5) for _ in range(2)]
        self.assertEqual(frames[-1], {"type": "websocket.close", "code": 4003})
        self.assertTrue(await alice.receive_nothing(timeout=0.2))
        await alice.disconnect()
        await admin.disconnect()

    async def test_signing_out_closes_the_users_sockets(self) -> None:
        from django.contrib.auth import user_logged_out

        ws = await connect(user=self.alice)
        await subscribe(ws, "orders")
        await sync_to_async(user_logged_out.send)(sender=type(self.alice), request=None, user=self.alice)
        self.assertEqual(await ws.receive_output(timeout=5), {"type": "websocket.close", "code": 4003})
        await ws.disconnect()

    async def test_joining_a_group_or_being_deleted_closes_the_users_sockets(self) -> None:
        from django.contrib.auth.models import Group, Permission

        group = await sync_to_async(Group.objects.create)(name="support")
        permission = await sync_to_async(Permission.objects.get)(codename="change_order")
        for change in (
            lambda: self.alice.groups.add(group),  # from the user's side
            lambda: group.permissions.add(permission),  # the group's rights
            permission.group_set.clear,  # ... from the permission's side
            group.user_set.clear,  # from the group's side, no pk_set
            lambda: group.user_set.add(self.alice),
            group.delete,
            lambda: self.alice.user_permissions.add(permission),
            self.alice.delete,
        ):
            ws = await connect(user=self.alice)
            await subscribe(ws, "orders")
            await sync_to_async(change)()
            self.assertEqual(await ws.receive_output(timeout=5), {"type": "websocket.close", "code": 4003})
            await ws.disconnect()

    async def test_a_save_that_keeps_the_users_access_keeps_the_socket(self) -> None:
        ws = await connect(user=self.alice)
        await subscribe(ws, "orders")
        self.alice.email = "new@example.com"
        await sync_to_async(self.alice.save)()
        mine = await self.order(self.alice)
        self.assertEqual((await receive(ws))["item"]["id"], mine.pk)  # still open, still live
        await ws.disconnect()
