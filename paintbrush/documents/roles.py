"""
Role documents (Pattern 2, "full document push"): for apps where several tables form one
document per role, Paintbrush assembles each role's whole document from the ORM and
pushes it after every committed change that affects it.

    # myapp/live.py
    from paintbrush import documents

    class AdminDocument(documents.Role):
        name = "admin"                        # one group, "admin", shared by all staff
        reads = (User, Order, Product)        # changes to these affect it (the default)

        def applies_to(self, user): return user.is_staff
        def assemble(self, user_id): return {"users": [...], "orders": [...], ...}

    class CustomerDocument(documents.Role):
        name = "customer"
        per_user = True                       # one group per user: "customer:<id>"
        reads = (User, Order, Product)

        def applies_to(self, user): return user.is_authenticated
        def assemble(self, user_id): ...
        def affected(self, instance):         # narrow the default "every group"
            if isinstance(instance, Order):
                return [self.group(instance.user_id)]
            return super().affected(instance)

    documents.register(AdminDocument(), CustomerDocument())   # first matching role wins

A user's document is ``{"role": <name>, **assemble(user.pk)}``. Delivery (coalescing,
refcounts, one assembly per change per group) is ``paintbrush.documents.hub``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Model

from ..groups import document_group

__all__ = ["EVERY", "ROLE_NAME", "DocGroup", "Every", "Role", "RoleRegistry", "register", "roles"]

#: What a role name may be: it prefixes group names, on the wire and in the channel
#: layer (``paintbrush.E008``).
ROLE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,60}$")


class Every:
    """``affected()`` result: every connected group of the role."""

    def __repr__(self) -> str:
        return "EVERY"


#: Returned by ``Role.affected`` for "every connected group of this role".
EVERY = Every()


@dataclass(frozen=True)
class DocGroup:
    """The sockets that share one document: all users of a shared role (``admin``), or
    one user of a per-user role (``customer:<id>``)."""

    role: str
    user_id: Any = None

    def __str__(self) -> str:
        return self.role if self.user_id is None else f"{self.role}:{self.user_id}"

    @property
    def layer_group(self) -> str:
        """The channel-layer group that carries this document's change notices."""
        return document_group(self.role, self.user_id)


class Role:
    """One projection of the data, for the users it ``applies_to``."""

    #: The role's name, sent as ``"role"`` in the document; a group name prefix.
    name: str = ""
    #: One document per user (group ``"<name>:<user id>"``) or one shared (group ``name``).
    per_user: bool = False
    #: Models the document reads: a change to any of them affects it by default.
    reads: tuple[type[Model], ...] = ()

    def applies_to(self, user: Any) -> bool:
        raise NotImplementedError

    def assemble(self, user_id: Any) -> dict[str, Any]:
        """The document's body, from the ORM, in a bounded number of queries.

        ``user_id`` is the group's user's primary key (as the user model types it) for
        a per-user role, None for a shared one."""
        raise NotImplementedError

    def affected(self, instance: Model) -> Iterable[DocGroup] | Every:
        """The groups a change to ``instance`` affects: ``EVERY`` (the default, for a
        model in ``reads``), some ``group(...)``, or nothing."""
        return EVERY if isinstance(instance, self.reads) else ()

    # -- derived ------------------------------------------------------------------------

    def group(self, user_id: Any = None) -> DocGroup:
        """The group of ``user_id``'s document (the one shared group if not ``per_user``)."""
        return DocGroup(self.name, user_id if self.per_user else None)

    def group_of(self, user: Any) -> DocGroup:
        return self.group(user.pk)

    def document(self, group: DocGroup) -> dict[str, Any]:
        return {"role": self.name, **self.assemble(group.user_id)}


class RoleRegistry:
    def __init__(self) -> None:
        self.roles: list[Role] = []

    def register(self, *roles: Role) -> None:
        self.roles.extend(roles)

    def role_for(self, user: Any) -> Role | None:
        if user is None or not user.is_authenticated:
            return None
        return next((role for role in self.roles if role.applies_to(user)), None)

    def by_name(self, name: str) -> Role | None:
        return next((role for role in self.roles if role.name == name), None)

    @property
    def models(self) -> set[type[Model]]:
        return {model for role in self.roles for model in role.reads}


#: The roles of the project, in priority order.
roles = RoleRegistry()


def register(*declared: Role) -> None:
    """Declare the project's roles; a user gets the first role that applies to them."""
    roles.register(*declared)
