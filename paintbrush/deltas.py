"""
Where a delta is built: the three event shapes of PROTOCOL.md section 2, rendered by
the resource's own serializer and JSON-encoded once per write.

    item = render(resource, todo)                      # as GET /api/todos/<id> shows it
    text = encode(update_event("todos", item["id"], {"done": True}, version=2))

``encode`` is the only JSON encoder on the event path: the same text is handed to every
group and every socket (tests count its calls to prove it).
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

from rest_framework.utils.encoders import JSONEncoder

if TYPE_CHECKING:
    from django.db.models import Model

    from .resources import Resource

__all__ = [
    "changed_fields",
    "create_event",
    "delete_event",
    "encode",
    "render",
    "snapshot_event",
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


def snapshot_event(resource: str, items: list[Any]) -> dict[str, Any]:
    return {"resource": resource, "action": "snapshot", "items": items}


def encode(message: dict[str, Any]) -> str:
    """Compact JSON text; DRF's encoder covers what a serializer may leave
    (decimals, dates, UUIDs)."""
    return json.dumps(message, cls=JSONEncoder, separators=(",", ":"), ensure_ascii=False)
