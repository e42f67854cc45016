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
refcounts, one assembly per change per group) is ``paintbrush.doc_hub``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Model

__all__ = ["EVERY", "Every", "Role", "register", "roles"]


class Every:
    """``affected()`` result: every connected group of the role."""

    def __repr__(self) -> str:
        return "EVERY"


#: Returned by ``Role.affected`` for "every connected group of this role".
EVERY = Every()


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

        ``user_id`` is the group's user for a per-user role, None for a shared one."""
        raise NotImplementedError

    def affected(self, instance: Model) -> Iterable[str] | Every:
        """The groups a change to ``instance`` affects: ``EVERY`` (the default, for a
        model in ``reads``), some ``group(...)`` names, or nothing."""
        return EVERY if isinstance(instance, self.reads) else ()

    # -- derived ------------------------------------------------------------------------

    def group(self, user_id: Any = None) -> str:
        return f"{self.name}:{user_id}" if self.per_user else self.name

    def group_of(self, user: Any) -> str:
        return self.group(user.pk if self.per_user else None)

    def user_id_of(self, group: str) -> Any:
        """Inverse of ``group``: the user id a per-user group's document is for."""
        return group.split(":", 1)[1] if self.per_user else None

    def document(self, group: str) -> dict[str, Any]:
        return {"role": self.name, **self.assemble(self.user_id_of(group))}


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

    def role_of_group(self, group: str) -> Role:
        role = self.by_name(group.split(":", 1)[0])
        if role is None:
            raise LookupError(f"No role for document group {group!r}")
        return role

    @property
    def models(self) -> set[type[Model]]:
        return {model for role in self.roles for model in role.reads}


#: The roles of the project, in priority order.
roles = RoleRegistry()


def register(*declared: Role) -> None:
    """Declare the project's roles; a user gets the first role that applies to them."""
    roles.register(*declared)
