"""
Windows over a resource's rows, in its ``ordering``: the last N, and the last N before a
row (``docs/protocol.md``, section 2b).

    GET /api/messages?room=3&last=50              # the room's last 50 messages
    GET /api/messages?room=3&last=50&before=812   # the 50 before message 812

A DRF filter backend, after the resource's django-filter filterset, so a window is
always of the rows that ``GET`` would list. The window is read newest first with a
LIMIT, then put back in order: on an index of the scope and the ordering (the demo's
``(room, created_at, id)``) entering a room of 100,000 messages reads 50 rows.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from rest_framework.exceptions import ValidationError
from rest_framework.filters import BaseFilterBackend
from rest_framework.request import Request

from .settings import pb_settings

__all__ = ["WindowFilter", "parse_last"]


def parse_last(value: Any) -> int:
    """``last`` as a count from 1 to ``MAX_WINDOW``; ``ValueError`` otherwise."""
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= pb_settings.MAX_WINDOW:
        raise ValueError(f"last is a count from 1 to {pb_settings.MAX_WINDOW}, not {value!r}.")
    return value


class WindowFilter(BaseFilterBackend):
    def filter_queryset(self, request: Request, queryset: QuerySet[Any], view: Any) -> QuerySet[Any]:
        last, before = request.query_params.get("last"), request.query_params.get("before")
        if last is None and before is None:
            return queryset
        try:
            count = parse_last(last if last is not None else str(pb_settings.MAX_WINDOW))
        except ValueError as exc:
            raise ValidationError({"last": [str(exc)]}) from exc
        ordering = list(getattr(view.resource, "ordering", ()) or ["pk"])
        if before is not None:
            queryset = queryset.filter(_before(queryset, ordering, before))
        newest_first = [name[1:] if name.startswith("-") else f"-{name}" for name in ordering]
        window = queryset.order_by(*newest_first).values("pk")[:count]
        return queryset.filter(pk__in=window).order_by(*ordering)


def _before(queryset: QuerySet[Any], ordering: list[str], pk: str) -> Q:
    """Rows that sort before row ``pk`` (which must be one the caller may list)."""
    names = [name.lstrip("-") for name in ordering]
    try:
        row = queryset.filter(pk=pk).values(*names).first()
    except (ValueError, TypeError) as exc:
        raise ValidationError({"before": [f"No row {pk!r} to read before."]}) from exc
    if row is None:
        raise ValidationError({"before": [f"No row {pk!r} to read before."]})
    # (a, b, c) < (x, y, z): a < x, or a = x and b < y, or a = x and b = y and c < z.
    condition = Q()
    for i, name in enumerate(ordering):
        field = name.lstrip("-")
        lookup = "gt" if name.startswith("-") else "lt"
        step = Q(**{f"{field}__{lookup}": row[field]})
        for earlier in ordering[:i]:
            step &= Q(**{earlier.lstrip("-"): row[earlier.lstrip("-")]})
        condition |= step
    return condition
