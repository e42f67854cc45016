"""
REST routes of every registered resource, under wherever the project includes them:

    urlpatterns = [path("api/", include("paintbrush.urls"))]

gives ``/api/<name>`` and ``/api/<name>/<id>``, each with an optional trailing slash.
"""

from __future__ import annotations

from typing import Any

from rest_framework.routers import SimpleRouter

from .resources import site


def build_router(resources: Any = site) -> SimpleRouter:
    router = SimpleRouter()
    router.trailing_slash = "/?"  # the slash is optional (PROTOCOL.md section 1)
    for resource in resources:
        router.register(resource.name, resource.get_viewset(), basename=resource.name)
    return router


urlpatterns = build_router().urls
