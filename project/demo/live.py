"""The demo's resources (docs/protocol.md, section 4)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q
from rest_framework import permissions, serializers
from rest_framework.exceptions import PermissionDenied

from paintbrush import access, documents
from paintbrush.resources import Resource, register
from paintbrush.views import LiveModelViewSet

from .models import Checklist, Membership, Message, Note, Order, Product, Room, Todo

User = get_user_model()

# Scoped by done: {"where": {"done": false}} holds the open todos only (docs/protocol.md 2b).
register(Todo, name="todos", notify=True, permission_classes=[permissions.AllowAny], scope_fields=["done"])
register(Checklist, name="checklists", notify=True, permission_classes=[permissions.AllowAny])
register(Note, name="notes", permission_classes=[permissions.AllowAny])


class StaffWritesSignedInReads(permissions.BasePermission):
    message = "Only staff may change products; signing in lets you read them."

    def has_permission(self, request: Any, view: Any) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return bool(request.user and request.user.is_authenticated)
        return bool(request.user and request.user.is_staff)


register(
    Product,
    name="products",
    notify=True,
    permission_classes=[StaffWritesSignedInReads],
    fields=["id", "name", "price", "version"],
)


class OrderPermission(permissions.IsAuthenticated):
    message = "A customer may change or delete an order only while it is pending."

    def has_object_permission(self, request: Any, view: Any, obj: Any) -> bool:
        if request.method in permissions.SAFE_METHODS or request.user.is_staff:
            return True
        return bool(obj.status == Order.Status.PENDING)


class OrderSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    class Meta:
        model = Order
        fields = ["id", "user", "product", "quantity", "status", "created_at", "version"]
        read_only_fields = ["id", "user", "created_at", "version"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        request = self.context.get("request")
        if request is None or request.user.is_staff:
            return attrs
        # A customer sets product and quantity when ordering, then only the quantity.
        current_status = self.instance.status if self.instance is not None else Order.Status.PENDING
        if attrs.get("status", current_status) != current_status:
            raise PermissionDenied("Only staff change an order's status.")
        if self.instance is not None and "product" in attrs and attrs["product"] != self.instance.product:
            raise PermissionDenied("A customer may change only the quantity of an order.")
        return attrs


class OrderResource(Resource):
    owner_field = "user"  # customers list, receive and change their own orders only
    serializer_class = OrderSerializer
    permission_classes = [OrderPermission]


register(Order, OrderResource, name="orders", notify=True)


# -- the chat (scoped subscriptions) --------------------------------------------------------


def readable_rooms(user: Any) -> Any:
    """The rooms ``user`` may read: every public one, and the private ones they belong to."""
    if not user.is_authenticated:
        return Room.objects.none()
    return Room.objects.filter(Q(private=False) | Q(memberships__user=user)).distinct()


class OwnerWrites(permissions.IsAuthenticated):
    message = "Only the room's owner changes it."

    def has_object_permission(self, request: Any, view: Any, obj: Any) -> bool:
        return request.method in permissions.SAFE_METHODS or obj.owner_id == request.user.pk


class RoomResource(Resource):
    owner_field = None
    permission_classes = [OwnerWrites]
    read_only_fields = ["owner", "created_at"]

    def get_queryset(self, user: Any) -> Any:
        return readable_rooms(user).order_by("name")

    def subscription_keys(self, user: Any) -> list[str]:
        return ["all", f"user.{user.pk}"]  # public rooms, and the private ones I am in

    def event_keys(self, instance: Any) -> list[str]:
        if not instance.private:
            return ["all"]
        members = Membership.objects.filter(room_id=instance.pk).values_list("user_id", flat=True)
        return [f"user.{pk}" for pk in {instance.owner_id, *members}]


class RoomViewSet(LiveModelViewSet):
    def perform_create(self, serializer: Any) -> None:
        room = serializer.save(owner=self.request.user)
        if room.private:  # its owner is its first member
            Membership.objects.create(room=room, user=room.owner)


register(Room, RoomResource, name="rooms", notify=True, viewset_class=RoomViewSet)


class MembershipPermission(permissions.IsAuthenticated):
    message = "The owner of a private room adds and removes its members; a member may leave."

    def has_object_permission(self, request: Any, view: Any, obj: Any) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        return request.method == "DELETE" and request.user.pk in {obj.user_id, obj.room.owner_id}


class MembershipSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    # The owner invites by user name (the chat page's form), or by id.
    username = serializers.CharField(write_only=True, required=False)
    user = serializers.PrimaryKeyRelatedField(queryset=User.objects.all(), required=False)

    class Meta:
        model = Membership
        fields = ["id", "room", "user", "username", "created_at", "version"]
        read_only_fields = ["id", "created_at", "version"]
        # The one-membership rule is checked in validate(), once the user is known
        # (DRF's own validator would require "user" when "username" names them).
        validators: list[Any] = []

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        username = attrs.pop("username", None)
        if username is not None:
            user = User.objects.filter(username=username).first()
            if user is None:
                raise serializers.ValidationError({"username": ["No user of that name."]})
            attrs["user"] = user
        if "user" not in attrs and self.instance is None:
            raise serializers.ValidationError({"user": ["Name the user to invite (user or username)."]})
        room = attrs.get("room", getattr(self.instance, "room", None))
        if self.instance is None and Membership.objects.filter(room=room, user=attrs["user"]).exists():
            raise serializers.ValidationError({"user": ["Already a member of this room."]})
        return attrs

    def validate_room(self, room: Room) -> Room:
        request = self.context.get("request")
        if request is not None and (room.owner_id != request.user.pk or not room.private):
            raise PermissionDenied("Only the owner of a private room adds its members.")
        return room


class MembershipResource(Resource):
    serializer_class = MembershipSerializer
    permission_classes = [MembershipPermission]

    def get_queryset(self, user: Any) -> Any:
        if not user.is_authenticated:
            return Membership.objects.none()
        private = readable_rooms(user).filter(private=True)
        return Membership.objects.filter(room__in=private).order_by("created_at", "id")

    def subscription_keys(self, user: Any) -> list[str]:
        return [f"user.{user.pk}"]

    def event_keys(self, instance: Any) -> list[str]:
        members = Membership.objects.filter(room_id=instance.room_id).values_list("user_id", flat=True)
        owner = Room.objects.filter(pk=instance.room_id).values_list("owner_id", flat=True)
        return [f"user.{pk}" for pk in {instance.user_id, *members, *owner}]


register(Membership, MembershipResource, name="memberships", notify=True)
# Who may read a private room's messages is decided by its memberships: a member removed
# while watching sees the room close (paintbrush.access.watch).
access.watch(Membership, users=lambda membership: [membership.user_id])


class MessagePermission(permissions.IsAuthenticated):
    message = "An author edits or deletes their own messages only."

    def has_object_permission(self, request: Any, view: Any, obj: Any) -> bool:
        return request.method in permissions.SAFE_METHODS or obj.user_id == request.user.pk


class MessageSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    text = serializers.CharField(min_length=1, max_length=2000)

    class Meta:
        model = Message
        fields = ["id", "room", "user", "text", "created_at", "version"]
        read_only_fields = ["id", "user", "created_at", "version"]

    def validate_room(self, room: Room) -> Room:
        request = self.context.get("request")
        if request is not None and not readable_rooms(request.user).filter(pk=room.pk).exists():
            raise serializers.ValidationError("No such room.")  # a private room is not revealed
        if self.instance is not None and room.pk != self.instance.room_id:
            raise PermissionDenied("A message stays in its room; only its text changes.")
        return room


class MessageResource(Resource):
    """Scoped by room, and only by room: no socket receives every room's messages."""

    serializer_class = MessageSerializer
    permission_classes = [MessagePermission]
    scope_fields = ["room"]
    scope_required = True
    ordering = ["created_at", "id"]

    def get_queryset(self, user: Any) -> Any:
        return Message.objects.filter(room__in=readable_rooms(user)).order_by("created_at", "id")

    def can_read_scope(self, user: Any, where: dict[str, Any]) -> bool:
        return bool(readable_rooms(user).filter(pk=where["room"]).exists())


class MessageViewSet(LiveModelViewSet):
    def perform_create(self, serializer: Any) -> None:
        serializer.save(user=self.request.user)


register(Message, MessageResource, name="messages", notify=True, viewset_class=MessageViewSet)


# -- role documents (Pattern 2) ----------------------------------------------------------
# Each document is made of parts, assembled once per change that affects them: the
# catalog once for every connected customer and the admin, a customer's orders for that
# customer alone.


class ProductSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    class Meta:
        model = Product
        fields = ["id", "name", "price", "version"]
        read_only_fields = ["id", "version"]


def _users(queryset: Any) -> list[dict[str, Any]]:
    return list(queryset.values("id", "username", "email", "is_staff").order_by("id"))


def _orders(queryset: Any) -> list[Any]:
    return list(OrderSerializer(queryset.order_by("created_at", "id"), many=True).data)


#: The catalog: the same in every document that holds it.
catalog = documents.Shared(
    lambda: list(ProductSerializer(Product.objects.order_by("id"), many=True).data), reads=[Product]
)


class AdminDocument(documents.Role):
    """Staff: every user, every order, the catalog. One document shared by all staff."""

    name = "admin"
    parts = {
        "users": documents.Shared(lambda: _users(User.objects.all()), reads=[User]),
        "orders": documents.Shared(lambda: _orders(Order.objects.all()), reads=[Order]),
        "products": catalog,
    }

    def applies_to(self, user: Any) -> bool:
        return bool(user.is_staff)


def _user(user_id: Any) -> dict[str, Any] | None:
    users = _users(User.objects.filter(pk=user_id))
    return users[0] if users else None


class CustomerDocument(documents.Role):
    """Any other signed-in user: themselves, their own orders, the catalog."""

    name = "customer"
    per_user = True
    parts = {
        "user": documents.PerUser(_user, reads=[User], users=lambda user: [user.pk]),
        "orders": documents.PerUser(
            lambda user_id: _orders(Order.objects.filter(user_id=user_id)),
            reads=[Order],
            users=lambda order: [order.user_id],
        ),
        "products": catalog,
    }

    def applies_to(self, user: Any) -> bool:
        return bool(user.is_authenticated)


documents.register(AdminDocument(), CustomerDocument())
