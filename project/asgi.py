"""ASGI entry point: HTTP through Django, WebSocket through Paintbrush's consumers."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs the apps loaded)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from paintbrush.origins import SameOriginValidator  # noqa: E402
from paintbrush.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Origin checked as Django's CSRF check does (scheme, host and port, or
        # CSRF_TRUSTED_ORIGINS); Channels' AllowedHostsOriginValidator checks the host only.
        "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
