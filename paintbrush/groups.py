"""
Every channel-layer group name Paintbrush uses, built in one place.

    event_group("todos", "all")          # "paintbrush.event.todos.all"
    document_group("customer", 5)       # "paintbrush.doc.customer.5"
    role_group("customer")               # "paintbrush.docrole.customer"
    access_group(5)                      # "paintbrush.access.5"

Each kind has its own prefix, so no resource, role or user id can make two kinds of
group collide. Nothing parses these names: whoever joins a group says, with the
callback it joins with, what a message to it means (``paintbrush.hub``). Channel-layer
group names allow ASCII letters, digits, ``-``, ``_`` and ``.`` only; resource and role
names are checked to fit (``paintbrush.E002``, ``paintbrush.E008``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["access_group", "document_group", "event_group", "role_group"]

_PREFIX = "paintbrush"


def event_group(resource: str, key: str) -> str:
    """Carries the events of one event key of a live resource (Pattern 1)."""
    return f"{_PREFIX}.event.{resource}.{key}"


def document_group(role: str, user_id: Any = None) -> str:
    """Carries change notices for one role document: shared (``admin``) or one user's
    (``customer:<id>`` on the wire, where channel layers allow no colon)."""
    return f"{_PREFIX}.doc.{role}" if user_id is None else f"{_PREFIX}.doc.{role}.{user_id}"


def role_group(role: str) -> str:
    """Carries notices for *every* connected document of a per-user role (a product
    change concerns every customer): joined by each process with such a socket."""
    return f"{_PREFIX}.docrole.{role}"


def access_group(user_id: Any) -> str:
    """Carries "this user's access changed" to every socket of that user."""
    return f"{_PREFIX}.access.{user_id}"
