"""
WebSocket routes, for the project's ASGI application:

    from channels.auth import AuthMiddlewareStack
    from channels.routing import ProtocolTypeRouter, URLRouter
    from paintbrush.origins import SameOriginValidator
    from paintbrush.routing import websocket_urlpatterns

    application = ProtocolTypeRouter({
        "http": get_asgi_application(),
        # Django's CSRF origin rule: not Channels' AllowedHostsOriginValidator (host only).
        "websocket": SameOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    })
"""

from __future__ import annotations

from django.urls import re_path

from .consumers import LiveConsumer
from .documents.consumers import DocConsumer

websocket_urlpatterns = [
    re_path(r"^ws/?$", LiveConsumer.as_asgi(), name="paintbrush-ws"),
    re_path(r"^ws/doc/?$", DocConsumer.as_asgi(), name="paintbrush-ws-doc"),
]
