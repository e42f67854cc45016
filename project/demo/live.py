"""The demo's resources (PROTOCOL.md section 4)."""

from __future__ import annotations

from typing import Any

from rest_framework import permissions, serializers
from rest_framework.exceptions import PermissionDenied

from paintbrush.resources import Resource, register

from .models import Checklist, Note, Order, Product, Todo

register(Todo, notify="todos", permission_classes=[permissions.AllowAny])
register(Checklist, notify="checklists", permission_classes=[permissions.AllowAny])
register(Note, name="notes", permission_classes=[permissions.AllowAny])


class StaffWritesSignedInReads(permissions.BasePermission):
    message = "Only staff may change products; signing in lets you read them."

    def has_permission(self, request: Any, view: Any) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return bool(request.user and request.user.is_authenticated)
        return bool(request.user and request.user.is_staff)


register(Product, notify="products", permission_classes=[StaffWritesSignedInReads])


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

    def validate_status(self, value: str) -> str:
        request = self.context.get("request")
        current = self.instance.status if self.instance is not None else Order.Status.PENDING
        if value != current and not (request and request.user.is_staff):
            raise PermissionDenied("Only staff change an order's status.")
        return value


class OrderResource(Resource):
    owner_field = "user"  # customers list, receive and change their own orders only
    serializer_class = OrderSerializer
    permission_classes = [OrderPermission]


register(Order, OrderResource, notify="orders")
