"""
The WebSocket handshake's origin check, by Django's CSRF rule for a POST: the site's own
origin (scheme, host and port) or one in ``CSRF_TRUSTED_ORIGINS``. In ``asgi.py``:

    from paintbrush.origins import SameOriginValidator

    application = ProtocolTypeRouter({
        "http": get_asgi_application(),
        "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    })

Channels' ``AllowedHostsOriginValidator`` compares only the Origin's host with
``ALLOWED_HOSTS``: a page on another port or scheme of an allowed host (a dev server on
``localhost:3000``, anything on ``http://`` beside an ``https://`` site) could open a
socket with the visitor's session cookie and read what the visitor may read, though
REST refused the same page.

The site's own origin is the handshake's as Django sees a request's: the scheme from the
server (``wss`` is ``https``) or from ``SECURE_PROXY_SSL_HEADER``, the host and port
from ``Host`` (or ``X-Forwarded-Host`` with ``USE_X_FORWARDED_HOST``), which
``ALLOWED_HOSTS`` must accept. Behind a proxy that ends TLS the server must be told the
scheme (uvicorn's ``--proxy-headers``, or ``SECURE_PROXY_SSL_HEADER``), or the
``https://`` page is refused.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain

from . import metrics
from .sockets import client_key

__all__ = ["SameOriginValidator", "origin_allowed"]

# As Django types its ASGIHandler, so that one may be wrapped.
_Scope = dict[str, Any]
_Receive = Callable[[], Awaitable[Mapping[str, Any]]]
_Send = Callable[[Mapping[str, Any]], Awaitable[None]]
_ASGIApp = Callable[[_Scope, _Receive, _Send], Awaitable[None]]

_DEFAULT_PORTS = {"http": 80, "https": 443}
#: The hosts Django accepts in debug mode when ALLOWED_HOSTS is empty (HttpRequest.get_host).
_DEBUG_HOSTS = [".localhost", "127.0.0.1", "[::1]"]

_Origin = tuple[str, str, int]  # scheme, host, port


class SameOriginValidator:
    """ASGI middleware for the ``"websocket"`` entry of a ``ProtocolTypeRouter``: passes
    a handshake on to ``application`` if ``origin_allowed(scope)``, else refuses it
    before it is accepted (the server answers HTTP 403) and counts the refusal
    (``paintbrush_refusals{reason="origin"}``, and a ``paintbrush.refused`` log line).

    Settings are read at each handshake, so ``override_settings`` applies."""

    def __init__(self, application: _ASGIApp) -> None:
        self.application = application

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        if scope["type"] != "websocket":
            raise ValueError(
                f"SameOriginValidator checks WebSocket handshakes, not {scope['type']!r}: "
                'put it in the ProtocolTypeRouter\'s "websocket" entry only.'
            )
        if origin_allowed(scope):
            await self.application(scope, receive, send)
            return
        origins = _header_values(scope, b"origin")
        metrics.refused(
            "origin", client_key(scope), path=scope.get("path", ""), origin=origins[0][:200] if origins else ""
        )
        await _refuse(receive, send)


def origin_allowed(scope: _Scope) -> bool:
    """Whether the WebSocket handshake in ``scope`` comes from a page Django's CSRF
    check would take a POST from: its one ``Origin`` header is a serialised origin
    (``scheme://host[:port]``, nothing else) equal to the site's own, or listed in
    ``CSRF_TRUSTED_ORIGINS`` (``https://*.example.com`` admits its subdomains). A
    handshake without an ``Origin`` (not from a browser page) is refused too."""
    origins = _header_values(scope, b"origin")
    if len(origins) != 1:
        return False
    origin = origins[0]
    parts = _parse(origin)
    if parts is None:
        return False
    return parts == _own_origin(scope) or _trusted(origin, parts[0])


# -- the rule -------------------------------------------------------------------------------------


def _parse(origin: str) -> _Origin | None:
    """``(scheme, host, port)`` of an http(s) origin as browsers send it; None for
    anything else: ``null``, a path, user info, a port that is not a number (the host
    of ``http://127.0.0.1:8300.evil.test`` is not ``127.0.0.1``)."""
    scheme, separator, netloc = origin.partition("://")
    scheme = scheme.lower()
    if not separator or scheme not in _DEFAULT_PORTS:
        return None
    # Django's own parser of a Host header: it refuses "/", "@", "?" and an empty port.
    host, port = split_domain_port(netloc)
    if not host:
        return None
    number = int(port) if port else _DEFAULT_PORTS[scheme]
    if not 0 < number < 65536:
        return None
    return scheme, host, number


def _own_origin(scope: _Scope) -> _Origin | None:
    """The origin the socket was opened at, as ``HttpRequest.get_host()`` and
    ``is_secure()`` see a request; None when its host is missing or not allowed."""
    hosts = _header_values(scope, b"x-forwarded-host") if settings.USE_X_FORWARDED_HOST else []
    if not hosts:
        hosts = _header_values(scope, b"host")
    if len(hosts) != 1:
        return None
    host, port = split_domain_port(hosts[0])
    allowed_hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed_hosts:
        allowed_hosts = _DEBUG_HOSTS
    if not host or not validate_host(host, allowed_hosts):
        return None
    scheme = _scheme(scope)
    # Browsers leave a default port out of Origin; a Host may name it (Django would then
    # refuse a POST whose Origin has none: not a difference worth keeping).
    return scheme, host, int(port) if port else _DEFAULT_PORTS[scheme]


def _scheme(scope: _Scope) -> str:
    """``https`` or ``http``, as ``HttpRequest.scheme``: ``SECURE_PROXY_SSL_HEADER``'s
    header when set and present, else the server's (``wss`` is ``https``)."""
    if settings.SECURE_PROXY_SSL_HEADER:
        try:
            name, secure_value = settings.SECURE_PROXY_SSL_HEADER
        except ValueError:
            raise ImproperlyConfigured(
                "The SECURE_PROXY_SSL_HEADER setting must be a tuple containing two values."
            ) from None
        values = _header_values(scope, _header_name(name))
        if values:
            first, *_ = ",".join(values).split(",", 1)
            return "https" if first.strip() == secure_value else "http"
    return "https" if scope.get("scheme") in {"wss", "https"} else "http"


def _trusted(origin: str, scheme: str) -> bool:
    """``CSRF_TRUSTED_ORIGINS`` as ``CsrfViewMiddleware._origin_verified`` reads it: an
    entry without ``*`` matches exactly; ``scheme://*.domain`` matches the domain and
    its subdomains, with the same scheme (and port, if the entry names one)."""
    netloc = origin.partition("://")[2].lower()
    for trusted in settings.CSRF_TRUSTED_ORIGINS:
        if "*" not in trusted:
            if origin == trusted:
                return True
            continue
        pattern = urlsplit(trusted)
        if pattern.scheme == scheme and is_same_domain(netloc, pattern.netloc.lstrip("*")):
            return True
    return False


# -- ASGI -----------------------------------------------------------------------------------------


def _header_values(scope: _Scope, name: bytes) -> list[str]:
    """Every value of one header, in order (ASGI names are lowercase)."""
    return [value.decode("latin-1") for key, value in scope.get("headers", ()) if key == name]


def _header_name(meta_key: str) -> bytes:
    """``HTTP_X_FORWARDED_PROTO`` -> ``b"x-forwarded-proto"``: a ``request.META`` key
    (as Django's settings name headers) as the ASGI header it comes from."""
    return meta_key.removeprefix("HTTP_").lower().replace("_", "-").encode("latin-1")


async def _refuse(receive: _Receive, send: _Send) -> None:
    """Close before accepting: the server answers the handshake with HTTP 403. Not
    Channels' ``WebsocketDenier``, a consumer that would take a channel-layer channel
    (a Redis round trip) for every refused handshake."""
    message = await receive()
    if message["type"] == "websocket.connect":
        await send({"type": "websocket.close"})
