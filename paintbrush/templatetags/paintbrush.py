"""
``{% load paintbrush %}{% paintbrush_importmap %}`` in a page's ``<head>`` lets its
module scripts ``import { signal, liveResource } from "paintbrush"``, and gives them
the CSRF token that their writes send:

    {% load paintbrush %}
    <head>{% paintbrush_importmap %}</head>
    <!-- <meta name="csrf-token" content="..."><script type="importmap">...</script> -->

The import map names each shipped module by its ``static()`` URL, so the client also
works behind ``ManifestStaticFilesStorage`` (hashed names) and a CDN ``STATIC_URL``.
The token comes from Django's ``get_token()``, which also has ``CsrfViewMiddleware``
set the ``csrftoken`` cookie on the response: a page need not be decorated with
``ensure_csrf_cookie`` for its first write to pass. ``{% paintbrush_csrf %}`` emits the
meta tag alone, for pages that write without importing the client.
"""

from __future__ import annotations

import json

from django import template
from django.conf import settings
from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.templatetags.static import static
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

#: The client's modules, in ``paintbrush/static/paintbrush/``.
MODULES = ("index", "signals", "socket", "stores", "live", "rest", "dom", "doc", "patch")


def importmap() -> dict[str, dict[str, str]]:
    imports = {"paintbrush": static("paintbrush/index.js")}
    for module in MODULES:
        # Relative imports inside the modules resolve to the unhashed URL; map it
        # to whatever static() serves.
        imports[f"{settings.STATIC_URL}paintbrush/{module}.js"] = static(f"paintbrush/{module}.js")
        imports[f"paintbrush/{module}.js"] = static(f"paintbrush/{module}.js")
    return {"imports": imports}


def csrf_meta(request: HttpRequest) -> SafeString:
    """``<meta name="csrf-token">`` with ``request``'s token, which ``rest.js`` sends
    when it cannot read the cookie (``CSRF_COOKIE_HTTPONLY``, a renamed cookie)."""
    return format_html('<meta name="csrf-token" content="{}">', get_token(request))


def _request(context: template.Context) -> HttpRequest | None:
    # A RequestContext (render(request, ...)) carries its request whatever the context
    # processors; a plain Context may hold one under "request".
    request = getattr(context, "request", None) or context.get("request")
    return request if isinstance(request, HttpRequest) else None


@register.simple_tag(takes_context=True)
def paintbrush_csrf(context: template.Context) -> SafeString:
    """The CSRF meta tag; nothing when the page is rendered without a request."""
    request = _request(context)
    return csrf_meta(request) if request is not None else mark_safe("")


@register.simple_tag(takes_context=True)
def paintbrush_importmap(context: template.Context) -> SafeString:
    """The CSRF meta tag (as ``paintbrush_csrf``) and the client's import map."""
    # json.dumps escapes nothing HTML-special that a static URL could hold except
    # "</", which cannot occur in these URLs; still, escape "<" to be safe.
    data = json.dumps(importmap()).replace("<", "\\u003c")
    return format_html('{}<script type="importmap">{}</script>', paintbrush_csrf(context), mark_safe(data))
