"""
Where a delta is built: what a write's event carries (the item, or the fields that
changed), rendered by the resource's own serializer; the event's shape on the wire is
``paintbrush.frames``'s (``docs/protocol.md``, section 2).

    item = render(resource, todo)                      # as GET /api/todos/<id> shows it
    fields = changed_fields(before, item)               # what an update event carries
    event = paintbrush.frames.update("todos", item["id"], fields, version=2)
    text = paintbrush.encoding.encode(event)           # once per write, for every socket
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.db.models import Model

    from .resources import Resource

__all__ = ["changed_fields", "render", "wire_id"]


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
