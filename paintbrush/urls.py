"""
REST routes of every registered resource, under wherever the project includes them:

    urlpatterns = [path("api/", include("paintbrush.urls"))]

gives ``/api/<name>`` and ``/api/<name>/<id>``, each with an optional trailing slash.
"""

from __future__ import annotations

from typing import Any

from django.urls import re_path
from rest_framework.routers import SimpleRouter

from .documents.views import DocumentView
from .resources import site


def build_router(resources: Any = site) -> SimpleRouter:
    router = SimpleRouter()
    router.trailing_slash = "/?"  # the slash is optional (docs/protocol.md, section 1)
    for resource in resources:
        router.register(resource.name, resource.get_viewset(), basename=resource.name)
    return router


urlpatterns = [
    # "doc" is a reserved resource name (check paintbrush.E002), so this never shadows one.
    re_path(r"^doc/?$", DocumentView.as_view(), name="paintbrush-doc"),
    *build_router().urls,
]
