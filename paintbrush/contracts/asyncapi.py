"""
The WebSocket side as an AsyncAPI 3.0 document, generated from the registered resources
and roles (``docs/protocol.md``, sections 2 and 3, and its appendix):

    python manage.py paintbrush_asyncapi -o asyncapi.json

Two channels, ``/ws`` (multiplexed: ``opendoc``/``closedoc`` in; ``opened``, ``closed``,
each live resource's ``snapshot``/``create``/``update``/``delete``, ``resync``, ``error``
and role document pushes out) and ``/ws/doc`` (the role document, pushed). Operations
are the server's: it *receives* ``opendoc`` and *sends* events. Item payloads are the
resources' REST items (the same serializer renders both), as drf-spectacular maps them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..checks import RESERVED_NAMES
from ..documents.roles import RoleRegistry
from ..documents.roles import roles as site_roles
from ..frames import DOC
from ..resources import Resource, site
from .openapi import RestComponents, rest_components
from .schemas import json_schema, ref_name

__all__ = ["ERROR_CODES", "asyncapi_document"]

ASYNCAPI_VERSION = "3.0.0"
PROTOCOL_VERSION = "1.2"

#: The socket's error codes (protocol, section 2 and appendix).
ERROR_CODES = {
    "bad_json": "The frame is not JSON (binary frames, NaN, nesting past the depth limit included).",
    "bad_message": 'JSON, but not an object with a string "action" (and "resource" where needed).',
    "unknown_action": "An action other than opendoc / closedoc.",
    "unknown_resource": "No live resource of that name (REST-only resources included).",
    "forbidden": "The user may not read that resource (or has no role document).",
    "too_large": "The frame is over the size limit (PAINTBRUSH['MAX_FRAME_BYTES'], 64 KiB by default).",
    "limit_exceeded": "opendoc of one more resource than PAINTBRUSH['MAX_SUBSCRIPTIONS_PER_SOCKET'].",
    "rate_limited": (
        "More than PAINTBRUSH['SNAPSHOTS_PER_MINUTE'] snapshots asked for on one socket; retry_after says when "
        "to ask again (an open subscription is sent resync then)."
    ),
    "bad_where": "A where or last the resource does not accept (an undeclared field, a wrong type, a missing scope).",
    "unavailable": (
        "The database (or the channel layer) failed while answering an opendoc; retry_after says when the "
        "resource is sent resync (the client opens it again). The socket and its other subscriptions go on."
    ),
}

#: Close codes a client may see (protocol, appendix).
CLOSE_CODES = {
    "1008": "More than MAX_ERRORS_PER_MINUTE bad frames in a minute. Reconnect with backoff.",
    "1009": "(production server) An incoming frame over the server's message limit.",
    "1012": "The server process restarts. Reconnect, with snapshots.",
    "1013": "The socket did not drain within SLOW_SOCKET_SECONDS. Reconnect, with snapshots.",
    "4008": "1008, from a server that sends only 1000 and 3000-4999 (Daphne, runserver).",
    "4013": "1013, from a server that sends only 1000 and 3000-4999 (Daphne, runserver).",
    "4003": "The user's access changed. Reconnect under the new rules.",
    "4029": "The client holds MAX_SOCKETS_PER_CLIENT sockets in this server process. Reconnect with backoff.",
}

_DESCRIPTION = """\
The WebSocket side of the Paintbrush wire contract (docs/protocol.md). One socket per page
on `/ws`, multiplexed: the client sends `opendoc` (with `"snapshot": true` for the current
rows) and `closedoc`; the server answers `opened`/`closed` and sends each open resource's
events, after the write's transaction commits, whatever made the write.

Apply events by version, never by arrival: per row keep the version at which each field was
last set and take a field only from something newer; a `delete` leaves a tombstone; an
`update` for a row not yet seen waits for it; a snapshot lists every row that exists (split
over frames, all but the last with `"more": true`). On `resync`, send `opendoc` with
`"snapshot": true` again. Errors never close the socket. Every handshake sends an `Origin`
naming an allowed host. Commands (writes) go over REST: see the OpenAPI schema.
"""


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/{kind}/{name}"}


def _const(value: str, description: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "const": value}
    if description:
        schema["description"] = description
    return schema


def _object(properties: dict[str, Any], required: Iterable[str], description: str) -> dict[str, Any]:
    # Extra keys are allowed in every message (clients ignore keys they do not know).
    return {"type": "object", "description": description, "properties": properties, "required": list(required)}


def _message(name: str, title: str, summary: str, payload: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "title": title, "summary": summary, "payload": payload, **extra}


class _Builder:
    def __init__(self, rest: RestComponents, roles: RoleRegistry) -> None:
        self.rest = rest
        self.roles = roles
        self.schemas: dict[str, Any] = {name: json_schema(schema) for name, schema in rest.components.items()}
        self.messages: dict[str, Any] = {}
        self.live = [shapes for shapes in rest.resources if shapes.resource.live]

    # -- schemas ---------------------------------------------------------------------------

    def item_schema(self, item: dict[str, Any]) -> dict[str, Any]:
        schema: dict[str, Any] = json_schema(item)
        return schema

    def item_properties(self, item: dict[str, Any]) -> dict[str, Any]:
        name = ref_name(item)
        schema = self.schemas.get(name, {}) if name else json_schema(item)
        properties = schema.get("properties", {})
        return properties if isinstance(properties, dict) else {}

    def protocol_schemas(self) -> None:
        resources = [shapes.resource.name for shapes in self.live]
        self.schemas["LiveResourceName"] = {
            "type": "string",
            "enum": [*resources, DOC],
            "description": 'A live resource of this server, or "doc" (the role document).',
        }
        self.schemas["Opendoc"] = _object(
            {
                "action": _const("opendoc"),
                "resource": _ref("components/schemas", "LiveResourceName"),
                "snapshot": {
                    "type": "boolean",
                    "description": "true: the current rows follow opened, before any event of the resource.",
                },
                "where": {
                    "type": "object",
                    "description": (
                        "A scope: equality conditions on the fields the resource declares (section 2b). Every "
                        "frame of the subscription carries it."
                    ),
                },
                "last": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "With snapshot: only the last N rows of the scope, in the resource's order.",
                },
                "patch": {
                    "type": "boolean",
                    "description": "With resource doc: true for JSON Patches after the first document (section 2c).",
                },
            },
            ["action", "resource"],
            "Subscribe to a resource's events (or the role document). Answered opened; repeating it is allowed.",
        )
        where = {"type": "object", "description": "The subscription's scope, when it has one (section 2b)."}
        self.schemas["Closedoc"] = _object(
            {"action": _const("closedoc"), "resource": _ref("components/schemas", "LiveResourceName"), "where": where},
            ["action", "resource"],
            "Stop a resource's events (or one scope's) on this socket. Answered closed.",
        )
        self.schemas["Opened"] = _object(
            {"type": _const("opened"), "resource": {"type": "string"}, "where": where},
            ["type", "resource"],
            "The answer: opendoc was accepted.",
        )
        self.schemas["Closed"] = _object(
            {
                "type": _const("closed"),
                "resource": {"type": "string"},
                "where": where,
                "reason": {
                    "type": "string",
                    "enum": ["forbidden"],
                    "description": "Present when the server closed it: the user may no longer read that scope.",
                },
            },
            ["type", "resource"],
            "The answer to closedoc, or, with a reason, the end of a subscription the user lost access to.",
        )
        self.schemas["Resync"] = _object(
            {"type": _const("resync"), "resource": {"type": "string"}, "reason": {"type": "string"}, "where": where},
            ["type", "resource"],
            "The subscription may have missed an event: send opendoc with snapshot true for it.",
        )
        self.schemas["ErrorCode"] = {
            "type": "string",
            "enum": list(ERROR_CODES),
            "description": "\n".join(f"- `{code}`: {text}" for code, text in ERROR_CODES.items()),
        }
        self.schemas["Error"] = _object(
            {
                "type": _const("error"),
                "error": _ref("components/schemas", "ErrorCode"),
                "message": {"type": "string", "description": "Human readable."},
                "request": {"description": "The offending message, when it parsed as JSON."},
                "retry_after": {
                    "type": "number",
                    "description": "rate_limited, unavailable: seconds until the request may be made again.",
                },
            },
            ["type", "error", "message"],
            "A request was refused; the socket stays open.",
        )
        documents = list(self.rest.documents.values())
        if not documents:
            document: dict[str, Any] = {"type": "object", "properties": {"role": {"type": "string"}}}
        else:
            document = documents[0] if len(documents) == 1 else {"oneOf": documents}
        self.schemas["RoleDocument"] = {
            **document,
            "description": 'The signed-in user\'s role document: {"role": <name>, ...what the role assembles}.',
        }
        self.schemas["DocumentPush"] = _object(
            {
                "type": _const("doc"),
                "resource": _const(DOC, 'Present on /ws (the reserved resource "doc").'),
                "doc": _ref("components/schemas", "RoleDocument"),
                "patch": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "op": {"enum": ["add", "remove", "replace", "move", "copy", "test"]},
                            "path": {"type": "string"},
                            "from": {"type": "string"},
                            "value": {},
                        },
                        "required": ["op", "path"],
                    },
                    "description": "An RFC 6902 JSON Patch turning revision rev - 1 into rev (section 2c).",
                },
                "rev": {
                    "type": "integer",
                    "description": "The revision, to a client that asked for patches (opendoc patch, /ws/doc?patch=1).",
                },
            },
            ["type"],
            "The role document, whole, or to a client that asked for them a patch from the revision before: at "
            "once on connect (or after opened) whole, then after every change affecting it.",
        )
        self.schemas["DocumentPush"]["oneOf"] = [{"required": ["doc"]}, {"required": ["patch", "rev"]}]

    # -- messages ----------------------------------------------------------------------------

    def protocol_messages(self) -> None:
        def schema(name: str) -> dict[str, str]:
            return _ref("components/schemas", name)

        self.messages["opendoc"] = _message("opendoc", "opendoc", "Open a subscription.", schema("Opendoc"))
        self.messages["closedoc"] = _message("closedoc", "closedoc", "Close a subscription.", schema("Closedoc"))
        self.messages["opened"] = _message("opened", "opened", "A subscription is open.", schema("Opened"))
        self.messages["closed"] = _message("closed", "closed", "A subscription is closed.", schema("Closed"))
        self.messages["resync"] = _message("resync", "resync", "Ask for a fresh snapshot.", schema("Resync"))
        self.messages["error"] = _message("error", "error", "A request was refused.", schema("Error"))
        self.messages["doc"] = _message(
            "doc", "doc", "The role document, pushed whole or as a patch.", schema("DocumentPush")
        )

    def resource_messages(self) -> None:
        for shapes in self.live:
            resource = shapes.resource
            name = resource.name
            item = self.item_schema(shapes.item)
            properties = self.item_properties(shapes.item)
            id_schema = properties.get("id", {"type": ["string", "integer"]})
            fields = {key: value for key, value in properties.items() if key not in {"id", "version"}}
            version = {"type": "integer", "minimum": 1, "description": "The row's version after the change."}
            head = {"resource": _const(name)}
            self.messages[f"{name}.snapshot"] = _message(
                f"{name}.snapshot",
                f"{name} snapshot",
                f"The {name} the socket's user may see, after opened.",
                _object(
                    {
                        **head,
                        "action": _const("snapshot"),
                        "items": {"type": "array", "items": item},
                        "more": {
                            "type": "boolean",
                            "const": True,
                            "description": "More frames of this snapshot follow; apply them together.",
                        },
                    },
                    ["resource", "action", "items"],
                    "Every row that exists, as GET /api/<name> returns them (maybe split over frames).",
                ),
            )
            self.messages[f"{name}.create"] = _message(
                f"{name}.create",
                f"{name} create",
                f"An item of {name} was created.",
                _object(
                    {**head, "action": _const("create"), "item": item},
                    ["resource", "action", "item"],
                    "The new item, as the REST API renders it.",
                ),
            )
            self.messages[f"{name}.update"] = _message(
                f"{name}.update",
                f"{name} update",
                f"Fields of an item of {name} changed.",
                _object(
                    {
                        **head,
                        "action": _const("update"),
                        "id": id_schema,
                        "fields": {
                            "type": "object",
                            "description": "Only the fields whose value changed, rendered as the REST API does.",
                            "properties": fields,
                        },
                        "version": version,
                    },
                    ["resource", "action", "id", "fields", "version"],
                    "Apply each field only if this version is newer than the one that last set it.",
                ),
            )
            self.messages[f"{name}.delete"] = _message(
                f"{name}.delete",
                f"{name} delete",
                f"An item of {name} was deleted.",
                _object(
                    {**head, "action": _const("delete"), "id": id_schema, "version": version},
                    ["resource", "action", "id", "version"],
                    "version is one more than the row's last: anything about the row at or below it is stale.",
                ),
            )

    # -- the document ------------------------------------------------------------------------

    def build(self, title: str, version: str, servers: dict[str, Any]) -> dict[str, Any]:
        self.protocol_schemas()
        self.protocol_messages()
        self.resource_messages()
        live_messages = {key: _ref("components/messages", key) for key in self.messages}
        channels = {
            "live": {
                "address": "/ws",
                "title": "The multiplexed socket",
                "description": "Subscriptions to live resources and to the role document, many on one socket.",
                "messages": live_messages,
                "bindings": {"ws": _ws_binding()},
                "x-close-codes": CLOSE_CODES,
            },
            "doc": {
                "address": "/ws/doc",
                "title": "The role document socket",
                "description": (
                    "Pushes the signed-in user's role document on connect and after every change affecting it "
                    "(with the query patch=1: whole once, then JSON Patches). A signed-out handshake is refused; "
                    "what the client sends is ignored."
                ),
                "messages": {"doc": _ref("components/messages", "doc")},
                "bindings": {"ws": _ws_binding()},
                "x-close-codes": CLOSE_CODES,
            },
        }

        def on_live(*keys: str) -> list[dict[str, str]]:
            return [_ref("channels/live/messages", key) for key in keys]

        operations: dict[str, Any] = {
            "receiveOpendoc": {
                "action": "receive",
                "channel": _ref("channels", "live"),
                "summary": "A client subscribes to a live resource, or to its role document (resource doc).",
                "messages": on_live("opendoc"),
                "reply": {"channel": _ref("channels", "live"), "messages": on_live("opened", "error")},
            },
            "receiveClosedoc": {
                "action": "receive",
                "channel": _ref("channels", "live"),
                "summary": "A client ends a subscription.",
                "messages": on_live("closedoc"),
                "reply": {"channel": _ref("channels", "live"), "messages": on_live("closed", "error")},
            },
        }
        for shapes in self.live:
            name = shapes.resource.name
            operations[f"send.{name}"] = {
                "action": "send",
                "channel": _ref("channels", "live"),
                "summary": f"The events of {name}, to the sockets subscribed to it that may see the row.",
                "messages": on_live(*(f"{name}.{kind}" for kind in ("snapshot", "create", "update", "delete"))),
            }
        operations["sendResync"] = {
            "action": "send",
            "channel": _ref("channels", "live"),
            "summary": "A subscription may have missed an event (within 5 seconds of the server noticing).",
            "messages": on_live("resync"),
        }
        operations["sendError"] = {
            "action": "send",
            "channel": _ref("channels", "live"),
            "summary": "A frame was refused.",
            "messages": on_live("error"),
        }
        operations["sendDocument"] = {
            "action": "send",
            "channel": _ref("channels", "live"),
            "summary": "The role document, to sockets that opened doc.",
            "messages": on_live("doc"),
        }
        operations["sendDocumentSocket"] = {
            "action": "send",
            "channel": _ref("channels", "doc"),
            "summary": "The role document, on /ws/doc.",
            "messages": [_ref("channels/doc/messages", "doc")],
        }
        document: dict[str, Any] = {
            "asyncapi": ASYNCAPI_VERSION,
            "info": {
                "title": title,
                "version": version,
                "description": _DESCRIPTION + self.resource_table(),
                "x-paintbrush-protocol": PROTOCOL_VERSION,
            },
            "defaultContentType": "application/json",
        }
        if servers:
            document["servers"] = servers
        document["channels"] = channels
        document["operations"] = operations
        document["components"] = {"schemas": self.schemas, "messages": self.messages}
        return document

    def resource_table(self) -> str:
        rows = "\n".join(
            f"| `{shapes.resource.name}` | {'yes' if shapes.resource.live else 'no (REST only)'} | "
            f"`{ref_name(shapes.item) or '-'}` |"
            for shapes in self.rest.resources
        )
        roles = ", ".join(f"`{role.name}`" for role in self.roles.roles) or "none"
        return f"\n| resource | live | item |\n|---|---|---|\n{rows}\n\nRoles: {roles}.\n"


def _ws_binding() -> dict[str, Any]:
    return {
        "bindingVersion": "0.1.0",
        "method": "GET",
        "headers": {
            "type": "object",
            "properties": {
                "Origin": {"type": "string", "description": "A page of an allowed host; required."},
                "Cookie": {"type": "string", "description": "Django's session cookie: the socket's user."},
            },
            "required": ["Origin"],
        },
    }


def _servers(urls: Iterable[str]) -> dict[str, Any]:
    servers: dict[str, Any] = {}
    for index, url in enumerate(urls):
        protocol, _, host = url.partition("://")
        if not host or protocol not in {"ws", "wss"}:
            raise ValueError(f"A server is a ws:// or wss:// URL, not {url!r}.")
        servers["server" if index == 0 else f"server{index + 1}"] = {
            "host": host.rstrip("/"),
            "protocol": protocol,
        }
    return servers


def asyncapi_document(
    resources: Iterable[Resource] = site,
    roles: RoleRegistry | None = None,
    *,
    title: str = "Paintbrush WebSocket API",
    version: str = PROTOCOL_VERSION,
    servers: Iterable[str] = (),
) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of ``resources`` (default: every registered one) and
    ``roles`` (default: the project's), as a JSON-ready dict. ``servers`` are ws(s)://
    URLs of hosts that serve it (``ws://localhost:8000``)."""
    roles = roles if roles is not None else site_roles
    resources = [resource for resource in resources if resource.name not in RESERVED_NAMES]
    return _Builder(rest_components(resources, roles), roles).build(title, version, _servers(servers))
