"""
The command side: one DRF viewset class serves every resource.

    GET    /api/todos          list (no pagination envelope unless the project sets one)
    POST   /api/todos          create
    GET    /api/todos/<id>     one item, with ETag: "<version>"
    PUT    /api/todos/<id>     partial update (the body is merged, as in the seed)
    PATCH  /api/todos/<id>     the same
    DELETE /api/todos/<id>

``PUT``/``PATCH``/``DELETE`` honour ``If-Match: "<version>"`` (412 when stale). The
viewset only writes through the model's ``save()``/``delete()``: events are published by
the model signals (``paintbrush.publish``), never here, so every other writer publishes
the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Model, QuerySet
from rest_framework import permissions, viewsets
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .documents import roles
from .exceptions import PreconditionFailed

if TYPE_CHECKING:
    from .resources import Resource

__all__ = ["DocumentView", "LiveModelViewSet"]

_WRITE_METHODS = frozenset({"PUT", "PATCH", "DELETE"})


def _parse_if_match(header: str) -> list[str] | None:
    """Entity tags of an If-Match header; None for ``*``. Weak tags never match
    (RFC 9110 13.1.1 uses the strong comparison for If-Match)."""
    header = header.strip()
    if header == "*":
        return None
    return [t.strip()[1:-1] for t in header.split(",") if t.strip().startswith('"')]


class LiveModelViewSet(viewsets.ModelViewSet):  # type: ignore[type-arg]
    """A ``ModelViewSet`` over ``resource.get_queryset(user)``, JSON in, with
    merge-PUT, ``ETag`` and ``If-Match``."""

    resource: Resource
    parser_classes = [JSONParser]

    def get_queryset(self) -> QuerySet[Any]:
        qs = self.resource.get_queryset(self.request.user)
        if self.request.method in _WRITE_METHODS and self.resource.version_field:
            # Locked so that the If-Match comparison and the write see the same row.
            qs = qs.select_for_update()
        return qs

    def _version(self, instance: Model) -> int | None:
        field = self.resource.version_field
        return getattr(instance, field) if field else None

    def _check_if_match(self, instance: Model) -> None:
        header = self.request.headers.get("If-Match")
        if header is None:
            return
        tags = _parse_if_match(header)
        if tags is not None and str(self._version(instance)) not in tags:
            raise PreconditionFailed()

    def _with_etag(self, response: Response, instance: Model) -> Response:
        version = self._version(instance)
        if version is not None:
            response["ETag"] = f'"{version}"'
        return response

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if request.method in {"POST", "PUT", "PATCH"} and not request.body:
            # DRF reads an empty body as {} without choosing a parser: a PUT of nothing
            # would succeed silently, and a wrong content type would go unnoticed.
            if self.get_content_negotiator().select_parser(request, self.get_parsers()) is None:
                raise UnsupportedMediaType(request.content_type)
            raise ParseError("The request body is empty; send a JSON object.")

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        instance = self.get_object()
        return self._with_etag(Response(self.get_serializer(instance).data), instance)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # PROTOCOL.md: PUT takes a partial body and merges it, like PATCH.
        with transaction.atomic():
            instance = self.get_object()
            self._check_if_match(instance)
            serializer = self.get_serializer(instance, data=request.data, partial=True)
            serializer.is_valid(raise_exception=True)
            self.perform_update(serializer)
        return self._with_etag(Response(serializer.data), instance)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        with transaction.atomic():
            instance = self.get_object()
            self._check_if_match(instance)
            self.perform_destroy(instance)
        return Response(status=204)

    def perform_create(self, serializer: Any) -> None:
        owner = self.resource.owner_field
        if owner:
            serializer.save(**{owner: self.request.user})
        else:
            serializer.save()


class DocumentView(APIView):
    """``GET /api/doc``: the caller's role document, as ``/ws/doc`` pushes it."""

    permission_classes = [permissions.IsAuthenticated]

    def get(self, request: Request) -> Response:
        role = roles.role_for(request.user)
        if role is None:
            self.permission_denied(request, "No role document applies to this user.")
        assert role is not None
        return Response(role.document(role.group_of(request.user)))
