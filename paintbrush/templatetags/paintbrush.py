"""
``{% load paintbrush %}{% paintbrush_importmap %}`` in a page's ``<head>`` lets its
module scripts ``import { signal, liveResource } from "paintbrush"``.

The import map names each shipped module by its ``static()`` URL, so the client also
works behind ``ManifestStaticFilesStorage`` (hashed names) and a CDN ``STATIC_URL``.
"""

from __future__ import annotations

import json

from django import template
from django.conf import settings
from django.templatetags.static import static
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

#: The client's modules, in ``paintbrush/static/paintbrush/``.
MODULES = ("index", "signals", "socket", "live", "rest", "dom", "doc")


def importmap() -> dict[str, dict[str, str]]:
    imports = {"paintbrush": static("paintbrush/index.js")}
    for module in MODULES:
        # Relative imports inside the modules resolve to the unhashed URL; map it
        # to whatever static() serves.
        imports[f"{settings.STATIC_URL}paintbrush/{module}.js"] = static(f"paintbrush/{module}.js")
        imports[f"paintbrush/{module}.js"] = static(f"paintbrush/{module}.js")
    return {"imports": imports}


@register.simple_tag
def paintbrush_importmap() -> SafeString:
    # json.dumps escapes nothing HTML-special that a static URL could hold except
    # "</", which cannot occur in these URLs; still, escape "<" to be safe.
    data = json.dumps(importmap()).replace("<", "\\u003c")
    return format_html('<script type="importmap">{}</script>', mark_safe(data))
