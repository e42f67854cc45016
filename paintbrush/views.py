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
the write observers (``paintbrush.writes``), never here, so every other writer publishes
the same way. The role document's ``GET /api/doc`` is ``paintbrush.documents.views``.
"""

from __future__ import annotations

from typing import Any, Protocol

from django.core.exceptions import RequestDataTooBig
from django.db import transaction
from django.db.models import Model, QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import status, viewsets
from rest_framework.exceptions import APIException, ParseError, UnsupportedMediaType
from rest_framework.request import Request
from rest_framework.response import Response

from .handlers import ExceptionHandler, handle_database_outages
from .parsers import BodyTooLarge, JSONParser
from .windows import WindowFilter
from .writes import stored_as_is

__all__ = ["LiveModelViewSet", "PreconditionFailed", "ViewedResource"]


class PreconditionFailed(APIException):
    """``If-Match`` named a version the row is no longer at (HTTP 412)."""

    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = "The item has changed since that version; reload it and retry."
    default_code = "precondition_failed"


_WRITE_METHODS = frozenset({"PUT", "PATCH", "DELETE"})


def _parse_if_match(header: str) -> list[str] | None:
    """Entity tags of an If-Match header; None for ``*``. Weak tags never match
    (RFC 9110 13.1.1 uses the strong comparison for If-Match)."""
    header = header.strip()
    if header == "*":
        return None
    return [t.strip()[1:-1] for t in header.split(",") if t.strip().startswith('"')]


class ViewedResource(Protocol):
    """What the viewset reads of its resource (a ``paintbrush.resources.Resource``,
    which builds the viewset: named by shape here, so that the two modules do not
    import each other)."""

    owner_field: str | None

    @property
    def version_field(self) -> str | None: ...

    def get_queryset(self, user: Any) -> QuerySet[Any]: ...


class LiveModelViewSet(viewsets.ModelViewSet):  # type: ignore[type-arg]
    """A ``ModelViewSet`` over ``resource.get_queryset(user)``, JSON in, with
    merge-PUT, ``ETag`` and ``If-Match``."""

    resource: ViewedResource
    parser_classes = [JSONParser]
    # A resource's scope_fields are its filterset_fields (``?room=3``); then the windows.
    filter_backends = [DjangoFilterBackend, WindowFilter]

    def get_queryset(self) -> QuerySet[Any]:
        qs = self.resource.get_queryset(self.request.user)
        if self.request.method in _WRITE_METHODS and self.resource.version_field:
            # Locked so that the If-Match comparison and the write see the same row.
            qs = qs.select_for_update()
        return qs

    def _locked(self, instance: Model) -> None:
        # get_object() read the row under select_for_update in this transaction: the
        # write need not read it again to learn its previous state.
        if self.resource.version_field and self.get_queryset().query.select_for_update:
            stored_as_is(instance)

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

    def handle_exception(self, exc: Exception) -> Response:
        # Django answers a body over DATA_UPLOAD_MAX_MEMORY_SIZE with an HTML 400 page;
        # an API client is owed JSON, and the right status.
        if isinstance(exc, RequestDataTooBig):
            exc = BodyTooLarge()
        return super().handle_exception(exc)

    def get_exception_handler(self) -> ExceptionHandler:
        # The project's handler, with a lost database answered 503 + Retry-After rather
        # than Django's HTML 500 (paintbrush.handlers).
        return handle_database_outages(super().get_exception_handler())

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
        # The protocol's PUT takes a partial body and merges it, like PATCH.
        with transaction.atomic():
            instance = self.get_object()
            self._check_if_match(instance)
            self._locked(instance)
            serializer = self.get_serializer(instance, data=request.data, partial=True)
            serializer.is_valid(raise_exception=True)
            self.perform_update(serializer)
        return self._with_etag(Response(serializer.data), instance)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        with transaction.atomic():
            instance = self.get_object()
            self._check_if_match(instance)
            self._locked(instance)
            self.perform_destroy(instance)
        return Response(status=204)

    def perform_create(self, serializer: Any) -> None:
        owner = self.resource.owner_field
        if owner:
            serializer.save(**{owner: self.request.user})
        else:
            serializer.save()
