"""``GET /api/doc``: the caller's role document, as ``/ws/doc`` pushes it."""

from __future__ import annotations

from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..handlers import ExceptionHandler, handle_database_outages
from .roles import roles

__all__ = ["DocumentView"]


class DocumentView(APIView):
    """The caller's role document; 403 when signed out or no role applies."""

    permission_classes = [permissions.IsAuthenticated]

    def get_exception_handler(self) -> ExceptionHandler:
        # A lost database is a JSON 503 with Retry-After, as for the resources.
        return handle_database_outages(super().get_exception_handler())

    def get(self, request: Request) -> Response:
        role = roles.role_for(request.user)
        if role is None:
            self.permission_denied(request, "No role document applies to this user.")
        assert role is not None
        return Response(role.document(role.group_of(request.user)))
