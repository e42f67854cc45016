"""
Contracts machines can read (``docs/contracts.md``): the OpenAPI schema of the REST side
(drf-spectacular, with ``paintbrush.contracts.openapi.AutoSchema``), the AsyncAPI
document of the WebSocket side, and TypeScript types of each resource's items.

    from paintbrush.contracts import asyncapi_document, typescript_types

    document = asyncapi_document()          # a dict: AsyncAPI 3.0, from the registry and roles
    source = typescript_types()             # a .d.ts: one interface per resource's item

The management commands ``paintbrush_asyncapi`` and ``paintbrush_types`` write them.
Needs drf-spectacular (``pip install drf-spectacular``).
"""

from __future__ import annotations

from .asyncapi import asyncapi_document
from .openapi import AutoSchema, rest_components
from .typescript import typescript_types

__all__ = ["AutoSchema", "asyncapi_document", "rest_components", "typescript_types"]
