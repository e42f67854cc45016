"""
The REST side as OpenAPI 3, by drf-spectacular: what its ``AutoSchema`` cannot see in
Paintbrush's views, said here (``docs/contracts.md``).

    # settings.py
    INSTALLED_APPS = [..., "drf_spectacular"]
    REST_FRAMEWORK = {..., "DEFAULT_SCHEMA_CLASS": "paintbrush.contracts.openapi.AutoSchema"}

    # urls.py: drf-spectacular's views serve it
    path("api/schema/", SpectacularAPIView.as_view(), name="schema")

What it adds to drf-spectacular's own schema of a ``LiveModelViewSet``: ``PUT`` takes a
partial body (it is merged, like ``PATCH``); ``If-Match`` on ``PUT``/``PATCH``/``DELETE``
and ``ETag`` on the item's responses when the model has a version; the error responses
of the protocol (400, 403, 404, 412, 413, 415) with their ``{"detail": ...}`` bodies; and
every field of a model serializer marked required in responses (it always renders them).
``GET /api/doc`` is described by the declared roles (``Role.document_serializer``).

``rest_components()`` is the same generation over the registered resources alone, for
the AsyncAPI document and the TypeScript types: the item, create and update schemas of
each resource, from the very serializer that renders events.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.urls import re_path
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import ResolvedComponent, force_instance, is_serializer
from drf_spectacular.settings import patched_settings
from drf_spectacular.utils import OpenApiResponse
from rest_framework.serializers import ModelSerializer

from ..documents.roles import Role, RoleRegistry
from ..documents.roles import roles as site_roles
from ..documents.views import DocumentView
from ..resources import Resource, site
from ..views import LiveModelViewSet

__all__ = [
    "AutoSchema",
    "PaintbrushSchemaMixin",
    "ResourceSchemas",
    "RestComponents",
    "rest_components",
    "role_document_name",
]

_WRITES = frozenset({"PUT", "PATCH", "DELETE"})
_BODIES = frozenset({"POST", "PUT", "PATCH"})

DETAIL = {
    "type": "object",
    "description": "An error: what went wrong, in words.",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
FIELD_ERRORS = {
    "type": "object",
    "description": (
        'Validation errors by field, as DRF renders them: {"title": ["This field is required."]}; '
        "errors about no single field are under non_field_errors."
    ),
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
}

_ERRORS = {
    "400": "The body is not a JSON object, or a field is invalid; nothing was written.",
    "403": "Not allowed: signed out where a user is needed, a missing CSRF token, or the resource's permissions.",
    "404": "No such item, or one the caller may not see.",
    "412": "If-Match named a version the item is no longer at; nothing was written.",
    "413": "The body is over the server's size limit.",
    "415": "The body is not JSON (send Content-Type: application/json).",
}
_STATUSES = {
    "list": ("403",),
    "create": ("400", "403", "413", "415"),
    "retrieve": ("403", "404"),
    "update": ("400", "403", "404", "412", "413", "415"),
    "partial_update": ("400", "403", "404", "412", "413", "415"),
    "destroy": ("403", "404", "412"),
}
_DESCRIPTIONS = {
    "list": "Every item of `{name}` the caller may see, as a JSON array (no pagination envelope).",
    "create": "Create an item of `{name}`; read-only fields in the body are ignored.",
    "retrieve": "One item of `{name}`{etag}.",
    "update": (
        "Change an item of `{name}`: the body may be partial and is merged into the item, as with PATCH.{if_match}"
    ),
    "partial_update": "Change some fields of an item of `{name}` (the same as PUT).{if_match}",
    "destroy": "Delete an item of `{name}`.{if_match}",
}


def role_document_name(role: Role) -> str:
    """The component name of a role's document: ``admin`` -> ``AdminRoleDocument``."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[-_]+", role.name)) + "RoleDocument"


class PaintbrushSchemaMixin:
    """What Paintbrush's views add to a drf-spectacular ``AutoSchema``. Mix it into a
    project's own ``AutoSchema`` subclass, or use ``AutoSchema`` below."""

    #: The roles that describe ``GET /api/doc``; None: the project's.
    paintbrush_roles: RoleRegistry | None = None

    # Provided by drf-spectacular's AutoSchema.
    view: Any
    method: str
    registry: Any

    def _live_resource(self) -> Resource | None:
        view = self.view
        resource = view.resource if isinstance(view, LiveModelViewSet) else None
        return resource if isinstance(resource, Resource) else None

    def get_request_serializer(self) -> Any:
        serializer = super().get_request_serializer()  # type: ignore[misc]
        if self.method == "PUT" and self._live_resource() is not None and is_serializer(serializer):
            # The merge-PUT: DRF's PATCH sets partial=True and drf-spectacular follows it.
            serializer = copy.copy(force_instance(serializer))  # type: ignore[no-untyped-call]
            serializer.partial = True
        return serializer

    def get_response_serializers(self) -> Any:
        if isinstance(self.view, DocumentView):
            return {
                200: OpenApiResponse(self._role_documents(), "The caller's role document."),
                403: OpenApiResponse(self._component("Detail", DETAIL), "Signed out, or no role applies."),
            }
        return super().get_response_serializers()  # type: ignore[misc]

    def get_description(self) -> str:
        resource = self._live_resource()
        action = getattr(self.view, "action", None)
        if resource is None or action not in _DESCRIPTIONS:
            return str(super().get_description())  # type: ignore[misc]
        versioned = resource.version_field is not None
        return _DESCRIPTIONS[action].format(
            name=resource.name,
            etag=', with `ETag: "<version>"`' if versioned else "",
            if_match=' With `If-Match: "<version>"`, only if the item is still at that version.' if versioned else "",
        )

    def _map_basic_serializer(self, serializer: Any, direction: str) -> Any:
        schema = super()._map_basic_serializer(serializer, direction)  # type: ignore[misc]
        if direction == "response" and self._response_only_components() and isinstance(serializer, ModelSerializer):
            # A ModelSerializer renders every readable field of an instance, defaults
            # included: a client may rely on each (drf-spectacular marks only required
            # inputs). Plain serializers (a role's document) keep their ``required``.
            schema["required"] = sorted(schema.get("properties", {}))
        return schema

    def _response_only_components(self) -> bool:
        from drf_spectacular.settings import spectacular_settings

        return bool(spectacular_settings.COMPONENT_SPLIT_REQUEST)

    def get_operation(self, path: str, path_regex: str, path_prefix: str, method: str, registry: Any) -> Any:
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)  # type: ignore[misc]
        resource = self._live_resource()
        if operation is not None and resource is not None:
            self._describe_live(operation, resource)
        return operation

    # -- helpers --------------------------------------------------------------------------

    def _component(self, name: str, schema: dict[str, Any]) -> dict[str, str]:
        component = ResolvedComponent(  # type: ignore[no-untyped-call]
            name=name, type=ResolvedComponent.SCHEMA, schema=schema, object=f"pb:{name}"
        )
        self.registry.register_on_missing(component)
        return component.ref

    def _describe_live(self, operation: dict[str, Any], resource: Resource) -> None:
        action = getattr(self.view, "action", None)
        versioned = resource.version_field is not None
        parameters = operation.setdefault("parameters", [])
        if self.method in _WRITES and versioned:
            parameters.append(
                {
                    "in": "header",
                    "name": "If-Match",
                    "required": False,
                    "schema": {"type": "string", "example": '"3"'},
                    "description": 'Only if the item is still at this version: `"<version>"` (strong), or `*`.',
                }
            )
        if self.method in _BODIES | {"DELETE"}:
            parameters.append(
                {
                    "in": "header",
                    "name": "X-CSRFToken",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "Django's CSRF token (the csrftoken cookie), for a session-authenticated write.",
                }
            )
        if not parameters:
            del operation["parameters"]
        if self.method in _BODIES and "requestBody" in operation:
            operation["requestBody"]["required"] = True  # an empty body is a 400
        responses = operation["responses"]
        if versioned and action in {"retrieve", "update", "partial_update"} and "200" in responses:
            responses["200"].setdefault("headers", {})["ETag"] = {
                "schema": {"type": "string", "example": '"3"'},
                "description": 'The item\'s version, as a strong entity tag: `"<version>"`.',
            }
        for status in _STATUSES.get(str(action), ()):
            if status in responses:
                continue
            schema: dict[str, Any] = self._component("Detail", DETAIL)
            if status == "400":
                schema = {"anyOf": [self._component("FieldErrors", FIELD_ERRORS), schema]}
            responses[status] = {"description": _ERRORS[status], "content": {"application/json": {"schema": schema}}}

    def _role_documents(self) -> dict[str, Any]:
        registry = self.paintbrush_roles if self.paintbrush_roles is not None else site_roles
        variants = []
        for role in registry.roles:
            head: dict[str, Any] = {
                "type": "object",
                "properties": {"role": {"type": "string", "enum": [role.name]}},
                "required": ["role"],
            }
            body = getattr(role, "document_serializer", None)
            if body is not None:
                component = self.resolve_serializer(body, "response")  # type: ignore[attr-defined]
                schema: dict[str, Any] = {"allOf": [head, component.ref]}
            else:
                # Undeclared: the role's name, and whatever assemble() returns.
                schema = {**head, "additionalProperties": True}
            schema["description"] = f"The document of the role {role.name!r}." + (
                " Pushed to one user." if role.per_user else " Shared by its users."
            )
            variants.append(self._component(role_document_name(role), schema))
        if not variants:
            return {"type": "object", "description": "No roles are declared.", "additionalProperties": True}
        return variants[0] if len(variants) == 1 else {"oneOf": variants}


class AutoSchema(PaintbrushSchemaMixin, SpectacularAutoSchema):  # type: ignore[misc]
    """drf-spectacular's ``AutoSchema``, knowing Paintbrush's views: set it as
    ``REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]``."""


# -- the registered resources' schemas, for the other contracts ------------------------------


@dataclass
class ResourceSchemas:
    """One resource's JSON shapes, as ``$ref``s into ``RestComponents.components``."""

    resource: Resource
    #: An item as GET, POST and the events render it.
    item: dict[str, Any]
    #: The body of POST (None if the resource takes no POST).
    create: dict[str, Any] | None
    #: The body of PUT/PATCH: every field optional (None if it takes neither).
    update: dict[str, Any] | None


@dataclass
class RestComponents:
    """What ``rest_components()`` found: shared component schemas (OpenAPI 3.0 dialect),
    each resource's shapes, and the role documents'."""

    components: dict[str, dict[str, Any]]
    resources: list[ResourceSchemas]
    #: name of a role -> its document (a $ref), in the roles' order.
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)


class _Generator(SchemaGenerator):
    """drf-spectacular's generator, with Paintbrush's schema class on every view
    whatever ``DEFAULT_SCHEMA_CLASS`` says, and the given roles."""

    def __init__(self, *args: Any, roles: RoleRegistry, **kwargs: Any) -> None:
        self.paintbrush_roles = roles
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]

    def create_view(self, callback: Any, method: str, request: Any = None) -> Any:
        view = super().create_view(callback, method, request)  # type: ignore[no-untyped-call]
        current = type(view.schema)
        if issubclass(current, PaintbrushSchemaMixin):
            schema_class: type = current
        elif issubclass(current, SpectacularAutoSchema):
            schema_class = type(f"Paintbrush{current.__name__}", (PaintbrushSchemaMixin, current), {})
        else:
            schema_class = AutoSchema
        schema = schema_class()
        schema.paintbrush_roles = self.paintbrush_roles
        self._set_schema_to_view(view, schema)  # type: ignore[no-untyped-call]
        return view


def _operation_schema(operation: dict[str, Any] | None, *keys: str) -> dict[str, Any] | None:
    node: Any = operation
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node if isinstance(node, dict) else None


def rest_components(resources: Iterable[Resource] = site, roles: RoleRegistry | None = None) -> RestComponents:
    """drf-spectacular's schemas of ``resources`` (default: every registered one) and of
    the role documents, generated as for the OpenAPI schema, with response components
    apart from request ones."""
    from ..urls import build_router

    resources = list(resources)
    roles = roles if roles is not None else site_roles
    patterns = [re_path(r"^doc/?$", DocumentView.as_view()), *build_router(resources).urls]
    settings = {
        "COMPONENT_SPLIT_REQUEST": True,
        "COMPONENT_SPLIT_PATCH": True,
        "CAMELIZE_NAMES": False,
        "SCHEMA_PATH_PREFIX": "/",
        "SCHEMA_PATH_PREFIX_INSERT": "",
        "SCHEMA_PATH_PREFIX_TRIM": False,
    }
    with patched_settings(settings):
        generator = _Generator(patterns=patterns, roles=roles)
        schema: dict[str, Any] = generator.get_schema(request=None, public=True)  # type: ignore[no-untyped-call]
    paths: dict[str, Any] = schema.get("paths", {})
    found = []
    json = "application/json"
    for resource in resources:
        listed = paths.get(f"/{resource.name}/", {})
        detail: dict[str, Any] = next(
            (item for path, item in paths.items() if re.fullmatch(rf"/{re.escape(resource.name)}/\{{\w+\}}/", path)),
            {},
        )
        item = _operation_schema(detail.get("get"), "responses", "200", "content", json, "schema")
        if item is None:
            listing = _operation_schema(listed.get("get"), "responses", "200", "content", json, "schema")
            item = listing.get("items") if listing else None
        found.append(
            ResourceSchemas(
                resource=resource,
                item=item if isinstance(item, dict) else {"type": "object"},
                create=_operation_schema(listed.get("post"), "requestBody", "content", json, "schema"),
                update=_operation_schema(
                    detail.get("patch") or detail.get("put"), "requestBody", "content", json, "schema"
                ),
            )
        )
    components = schema.get("components", {}).get("schemas", {})
    documents = {}
    for role in roles.roles:
        if role_document_name(role) in components:
            documents[role.name] = {"$ref": f"#/components/schemas/{role_document_name(role)}"}
    return RestComponents(components=components, resources=found, documents=documents)
