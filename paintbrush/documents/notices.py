"""
The writer's side of role documents: after a change commits, one small notice per
document group it affects (``Role.affected``), and no assembly; assembling is for the
processes that hold sockets of the group (``paintbrush.documents.hub``).

A change affects the groups of the row as stored before it and those of the row after
it, so a row leaving a document (an order handed to another customer) updates it too.
"""

from __future__ import annotations

from django.db.models import Model

from ..broadcast import send_on_commit
from ..groups import document_group, role_group
from ..writes import Write
from .roles import Every, roles

__all__ = ["DocumentNotices", "affected_groups"]


def affected_groups(instance: Model) -> set[str]:
    """Channel-layer groups of the documents a change to ``instance`` affects."""
    targets: set[str] = set()
    for role in roles.roles:
        affected = role.affected(instance)
        if isinstance(affected, Every):
            targets.add(role_group(role.name) if role.per_user else document_group(role.name))
        else:
            targets.update(group.layer_group for group in affected)
    return targets


class DocumentNotices:
    """The ``paintbrush.writes`` observer of every model a role document reads."""

    def before(self, write: Write) -> set[str] | None:
        if not roles.roles or write.is_login_bookkeeping:
            return None
        if write.creating or (write.model not in roles.models and not affected_groups(write.instance)):
            # New rows have no previous groups; a model no document reads costs no read.
            # (A row of a model a document reads may leave every document: its stored
            # state says which ones lose it.)
            return set()
        stored = write.stored
        return set() if stored is None else affected_groups(stored)

    def after(self, write: Write, before: set[str]) -> None:
        targets = affected_groups(write.instance) | before
        send_on_commit([(group, "") for group in sorted(targets)], write.using)
