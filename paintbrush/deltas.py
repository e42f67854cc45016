"""
Where a delta is built: the event shapes of the wire protocol (``docs/protocol.md``,
section 2), with items rendered by the resource's own serializer.

    item = render(resource, todo)                      # as GET /api/todos/<id> shows it
    event = update_event("todos", item["id"], {"done": True}, version=2)
    text = paintbrush.encoding.encode(event)           # once per write, for every socket
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.db.models import Model

    from .resources import Resource

__all__ = [
    "changed_fields",
    "create_event",
    "delete_event",
    "render",
    "update_event",
    "wire_id",
]


def render(resource: Resource, instance: Model) -> dict[str, Any]:
    """The item as the REST API shows it (no request in the context: events are
    rendered once for everybody, so a serializer must not depend on the viewer)."""
    serializer = resource.get_serializer_class()(instance, context={})
    return dict(serializer.data)


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``after`` whose rendered value differs from ``before``.

    ``version`` is left out: it travels beside ``fields`` in every event."""
    return {
        key: value for key, value in after.items() if key != "version" and (key not in before or before[key] != value)
    }


def wire_id(pk: Any) -> Any:
    """A primary key as the serializer renders it (UUIDs as strings)."""
    return str(pk) if isinstance(pk, uuid.UUID) else pk


def create_event(resource: str, item: dict[str, Any]) -> dict[str, Any]:
    return {"resource": resource, "action": "create", "item": item}


def update_event(resource: str, id: Any, fields: dict[str, Any], version: int | None) -> dict[str, Any]:
    return {"resource": resource, "action": "update", "id": id, "fields": fields, "version": version}


def delete_event(resource: str, id: Any, version: int | None) -> dict[str, Any]:
    return {"resource": resource, "action": "delete", "id": id, "version": version}
