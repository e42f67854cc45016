"""The demo's resources (docs/protocol.md, section 4)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from rest_framework import permissions, serializers
from rest_framework.exceptions import PermissionDenied

from paintbrush import documents
from paintbrush.resources import Resource, register

from .models import Checklist, Note, Order, Product, Todo

User = get_user_model()

register(Todo, name="todos", notify=True, permission_classes=[permissions.AllowAny])
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


# -- role documents (Pattern 2) ----------------------------------------------------------


def _users(queryset: Any) -> list[dict[str, Any]]:
    return list(queryset.values("id", "username", "email", "is_staff").order_by("id"))


def _catalog() -> list[Any]:
    return list(ProductSerializer(Product.objects.order_by("id"), many=True).data)


class ProductSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    class Meta:
        model = Product
        fields = ["id", "name", "price", "version"]
        read_only_fields = ["id", "version"]


class AdminDocument(documents.Role):
    """Staff: every user, every order, the catalog. One document shared by all staff."""

    name = "admin"
    reads = (User, Order, Product)

    def applies_to(self, user: Any) -> bool:
        return bool(user.is_staff)

    def assemble(self, user_id: Any) -> dict[str, Any]:
        orders = OrderSerializer(Order.objects.order_by("created_at", "id"), many=True).data
        return {"users": _users(User.objects.all()), "orders": list(orders), "products": _catalog()}


class CustomerDocument(documents.Role):
    """Any other signed-in user: themselves, their own orders, the catalog."""

    name = "customer"
    per_user = True
    reads = (User, Order, Product)

    def applies_to(self, user: Any) -> bool:
        return bool(user.is_authenticated)

    def assemble(self, user_id: Any) -> dict[str, Any]:
        users = _users(User.objects.filter(pk=user_id))
        orders = OrderSerializer(Order.objects.filter(user_id=user_id).order_by("created_at", "id"), many=True).data
        return {"user": users[0] if users else None, "orders": list(orders), "products": _catalog()}

    def affected(self, instance: Any) -> Any:
        # Narrower than "every connected customer": an order or a user concerns one.
        if isinstance(instance, Order):
            return [self.group(instance.user_id)]
        if isinstance(instance, User):
            return [self.group(instance.pk)]
        return super().affected(instance)  # a product: every connected customer


documents.register(AdminDocument(), CustomerDocument())
