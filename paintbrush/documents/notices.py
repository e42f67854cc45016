"""
The writer's side of role documents: after a change commits, one small notice per
channel-layer group it affects, naming the parts it affects, and no assembly;
assembling is for the processes that hold sockets of the group
(``paintbrush.documents.hub``).

    paintbrush.doc.customer.5     ["orders"]     alice's orders part
    paintbrush.docrole.customer   ["products"]   a shared part, or every customer's part
    paintbrush.doc.admin          ["orders"]     the part of a shared role

A change affects the parts of the row as stored before it and those of the row after
it, so a row leaving a document (an order handed to another customer) updates it too.
An empty notice means every part of the group (what an older process sends).
"""

from __future__ import annotations

import json

from django.db.models import Model

from .. import encoding
from ..broadcast import send_on_commit
from ..groups import document_group, role_group
from ..writes import Write
from .roles import Every, roles

__all__ = ["DocumentNotices", "affected_groups", "notice", "parts_of_notice"]

#: layer group -> the names of the parts affected ("" for a body without parts)
Targets = dict[str, set[str]]


def affected_groups(instance: Model) -> Targets:
    """The channel-layer groups of the documents a change to ``instance`` affects, each
    with the names of the parts it affects."""
    targets: Targets = {}
    for role in roles.roles:
        for name, part in role.layout:
            affected = part.affected(instance)
            if isinstance(affected, Every):
                groups = [role_group(role.name) if role.per_user else document_group(role.name)]
            else:
                groups = [document_group(role.name, user_id if role.per_user else None) for user_id in affected]
            for group in groups:
                targets.setdefault(group, set()).add(name or "")
    return targets


def notice(parts: set[str]) -> str:
    """The notice's text: the names of the parts, or "" for every part."""
    return "" if "" in parts else encoding.encode(sorted(parts))


def parts_of_notice(text: str) -> set[str] | None:
    """The part names a notice names; None for every part."""
    if not text:
        return None
    try:
        names = json.loads(text)
    except ValueError:
        return None
    return {name for name in names if isinstance(name, str)} if isinstance(names, list) else None


class DocumentNotices:
    """The ``paintbrush.writes`` observer of every model a role document reads."""

    def before(self, write: Write) -> Targets | None:
        if not roles.roles or write.is_login_bookkeeping:
            return None
        if write.creating or (write.model not in roles.models and not affected_groups(write.instance)):
            # New rows have no previous groups; a model no document reads costs no read.
            # (A row of a model a document reads may leave every document: its stored
            # state says which ones lose it.)
            return {}
        stored = write.stored
        return {} if stored is None else affected_groups(stored)

    def after(self, write: Write, before: Targets) -> None:
        targets = affected_groups(write.instance)
        for group, parts in before.items():
            targets.setdefault(group, set()).update(parts)
        send_on_commit([(group, notice(parts)) for group, parts in sorted(targets.items())], write.using)
