"""
REST bodies, parsed as strictly as socket frames: ``paintbrush.encoding.decode`` with the
depth limit, so a deeply nested body or ``NaN`` is a 400 ``{"detail": ...}`` and never a
500 (DRF's own parser lets ``json.load`` recurse until ``RecursionError``).

    class LiveModelViewSet(viewsets.ModelViewSet):
        parser_classes = [JSONParser]

An oversized body never reaches a parser: DRF reads ``request.body`` before calling a
JSON parser, and Django raises ``RequestDataTooBig`` there (past
``DATA_UPLOAD_MAX_MEMORY_SIZE``), which it would answer with an HTML 400. A view turns
that into ``BodyTooLarge``, a JSON 413, in ``handle_exception``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework import parsers, status
from rest_framework.exceptions import APIException, ParseError

from .encoding import decode
from .settings import pb_settings

__all__ = ["BodyTooLarge", "JSONParser", "max_json_depth"]


def max_json_depth() -> int:
    """``PAINTBRUSH["MAX_JSON_DEPTH"]``: how deep a client's JSON may nest."""
    return int(pb_settings.MAX_JSON_DEPTH)


def _charset(parser_context: Mapping[str, Any]) -> str:
    """The body's charset; only text codecs (``bz2_codec`` and the like would let a small
    body expand past the size limit)."""
    encoding = str(parser_context.get("encoding") or settings.DEFAULT_CHARSET)
    try:
        "".encode(encoding)
    except (LookupError, UnicodeError):
        raise ParseError(f'Unsupported charset "{encoding}" in request Content-Type header.') from None
    return encoding


class JSONParser(parsers.JSONParser):
    """DRF's ``JSONParser`` with ``decode``: nesting deeper than ``MAX_JSON_DEPTH``,
    ``NaN``/``Infinity`` and malformed text are each a ``ParseError`` (400) naming the
    fault."""

    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        encoding = _charset(parser_context or {})
        try:
            data: dict[str, Any] = decode(stream.read().decode(encoding), max_depth=max_json_depth())
        except ValueError as exc:  # UnicodeDecodeError included
            raise ParseError(f"JSON parse error - {exc}") from exc
        return data


class BodyTooLarge(APIException):
    """The request body is over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (HTTP 413). Raised by a
    view in place of Django's ``RequestDataTooBig``, which would be an HTML 400."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "body_too_large"

    def __init__(self) -> None:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        super().__init__(f"The request body is larger than {limit} bytes.")
