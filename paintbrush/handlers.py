"""
REST answers when the database is unreachable: a JSON ``503`` with ``Retry-After``, in
place of Django's HTML "Server Error (500)".

    class LiveModelViewSet(viewsets.ModelViewSet):
        def get_exception_handler(self):
            return handle_database_outages(super().get_exception_handler())

DRF's exception handler answers only ``APIException``s and ``Http404``/``PermissionDenied``;
anything else leaves the view, and Django answers it with its HTML 500 page, which an
API client can neither parse nor know to retry. While the database is down, restarting
or failing over, every query raises ``django.db.OperationalError`` (connection refused,
connection cut, "the database system is starting up") or ``InterfaceError`` (a
connection already closed). Those, and only those, become ``DatabaseUnavailable``: the
client may simply retry. Other database errors (``IntegrityError``, ``DataError``,
``ProgrammingError``) are bugs or bad data, and stay 500s with their tracebacks.

The 503 is rendered by the project's own ``REST_FRAMEWORK["EXCEPTION_HANDLER"]``, like any
other API error, so it looks like the project's other errors; DRF's default renders it
``{"detail": "..."}`` and turns ``DatabaseUnavailable.wait`` into ``Retry-After``.

Every Paintbrush viewset does this by itself. For every DRF view of a project, set
``REST_FRAMEWORK = {"EXCEPTION_HANDLER": "paintbrush.handlers.exception_handler"}``.
No middleware is needed: with Django's usual middleware an API request meets the
database only inside the view, since the session and the user are loaded lazily, by
DRF's authentication (``tests/test_database_outage.py`` shows it). A project that sets
``SESSION_SAVE_EVERY_REQUEST`` writes the session after the view, out of DRF's reach.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import InterfaceError, OperationalError
from rest_framework import status
from rest_framework import views as drf_views
from rest_framework.exceptions import APIException
from rest_framework.response import Response

from .settings import pb_settings

__all__ = [
    "DATABASE_OUTAGES",
    "DatabaseUnavailable",
    "ExceptionHandler",
    "exception_handler",
    "handle_database_outages",
]

#: What a lost or refused database connection raises: answered "try again later" (a JSON
#: 503 here, ``unavailable`` on a socket), unlike bugs and bad data (IntegrityError, ...).
DATABASE_OUTAGES = (OperationalError, InterfaceError)

logger = logging.getLogger(__name__)

#: DRF's signature: ``handler(exc, context) -> Response | None``.
ExceptionHandler = Callable[[Exception, dict[str, Any]], Response | None]


class DatabaseUnavailable(APIException):
    """The database cannot be reached (HTTP 503). ``wait`` is the ``Retry-After`` in
    seconds, ``PAINTBRUSH["DATABASE_RETRY_AFTER_SECONDS"]``."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The database is unavailable; try again later."
    default_code = "database_unavailable"

    def __init__(self) -> None:
        super().__init__()
        self.wait = int(pb_settings.DATABASE_RETRY_AFTER_SECONDS)


def handle_database_outages(handler: ExceptionHandler) -> ExceptionHandler:
    """``handler``, with a lost or refused database connection answered as
    ``DatabaseUnavailable`` (rendered by ``handler`` itself, else by DRF's default)."""

    def handle(exc: Exception, context: dict[str, Any]) -> Response | None:
        if not isinstance(exc, DATABASE_OUTAGES):
            return handler(exc, context)
        request = context.get("request")
        # One line per request: an outage answers every request so, and a traceback
        # each would bury the line that says when it began.
        logger.warning(
            "The database is unavailable (%s: %s); answered 503 to %s %s",
            type(exc).__name__,
            " ".join(str(exc).split()),
            getattr(request, "method", "-"),
            getattr(request, "path", "-"),
        )
        # Under ATOMIC_REQUESTS the view's transaction must not try to commit on the dead
        # connection after we answered (that would raise outside the view: an HTML 500).
        # DRF's default handler does this too; a project's own might not.
        drf_views.set_rollback()
        unavailable = DatabaseUnavailable()
        response = handler(unavailable, context) or drf_views.exception_handler(unavailable, context)
        if response is not None and response.status_code == unavailable.status_code:
            response.setdefault("Retry-After", str(unavailable.wait))
        return response

    return handle


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's default ``exception_handler``, answering database outages with a 503: for
    ``REST_FRAMEWORK["EXCEPTION_HANDLER"]``, so that every DRF view does."""
    return handle_database_outages(drf_views.exception_handler)(exc, context)
