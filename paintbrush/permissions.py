"""
Who may read a resource over WebSocket, and what they see: the resource's own DRF
viewset decides, with its permission classes and queryset, exactly as it would for
``GET /api/<name>``.

    view = list_view(resource, user)      # raises Forbidden if the user may not list

What the view lists is read and rendered for sockets by ``paintbrush.snapshots``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, QueryDict
from rest_framework.exceptions import APIException
from rest_framework.request import Request

from .exceptions import Forbidden
from .resources import Resource

__all__ = ["list_view"]


def list_view(resource: Resource, user: Any, params: dict[str, str] | None = None) -> Any:
    """A viewset instance set up as for ``GET /api/<name>?<params>`` by ``user``;
    raises ``Forbidden`` when its permission classes refuse."""
    http = HttpRequest()
    http.method = "GET"
    http.path = f"/api/{resource.name}"
    http.user = user
    if params:
        http.GET = QueryDict(urlencode(params))
    request = Request(http)
    request.user = user  # the socket already authenticated its user (AuthMiddlewareStack)
    view = resource.get_viewset()(action="list", request=request, args=(), kwargs={}, format_kwarg=None)
    try:
        view.check_permissions(request)
    except APIException as exc:
        raise Forbidden(f"You may not read {resource.name!r}: {exc.detail}") from exc
    return view
