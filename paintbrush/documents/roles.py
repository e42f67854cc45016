"""
Role documents (Pattern 2, "full document push"): for apps where several tables form one
document per role, Paintbrush assembles each role's document from the ORM and pushes it
after every committed change that affects it.

A document is made of *parts*, each with its own reads and reach, so a change
re-assembles only the parts it affects, once per change however many users hold them:

    # myapp/live.py
    from paintbrush import documents

    catalog = documents.Shared(lambda: list(ProductSerializer(Product.objects.all(), many=True).data),
                               reads=[Product])      # one value for everyone who holds it

    class AdminDocument(documents.Role):
        name = "admin"                       # one group, "admin", shared by all staff
        parts = {
            "orders": documents.Shared(all_orders, reads=[Order]),
            "products": catalog,              # the same part: assembled once for both roles
        }

        def applies_to(self, user): return user.is_staff

    class CustomerDocument(documents.Role):
        name = "customer"
        per_user = True                      # one group per user: "customer:<id>"
        parts = {
            # assembled per user; a change to an order concerns its customer's part only
            "orders": documents.PerUser(orders_of, reads=[Order], users=lambda order: [order.user_id]),
            "products": catalog,
        }

        def applies_to(self, user): return user.is_authenticated

    documents.register(AdminDocument(), CustomerDocument())   # first matching role wins

A user's document is ``{"role": <name>, <part name>: <part value>, ...}`` in the order
the parts are declared. A simple role may still declare one ``assemble(user_id)``
returning the whole body, and narrow ``affected(instance)``; the body is then one part.
Delivery (coalescing, refcounts, patches) is ``paintbrush.documents.hub``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django.db.models import Model

from ..groups import document_group

__all__ = [
    "EVERY",
    "ROLE_NAME",
    "DocGroup",
    "Every",
    "Part",
    "PerUser",
    "Role",
    "RoleRegistry",
    "Shared",
    "register",
    "roles",
]

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


class Part:
    """One part of role documents: assembled from the ORM into a JSON value, once per
    change that affects it. Use ``Shared`` or ``PerUser``."""

    #: One value per user (``PerUser``) or one for every document that holds it.
    per_user: bool = False

    def __init__(self, assemble: Callable[..., Any], *, reads: Iterable[type[Model]] = ()) -> None:
        self._assemble = assemble
        #: Models the part reads: a change to one of them affects it.
        self.reads: tuple[type[Model], ...] = tuple(reads)

    def assemble(self, user_id: Any) -> Any:
        """The part's value, in a bounded number of queries (``user_id`` is None for a
        shared part)."""
        return self._assemble(user_id) if self.per_user else self._assemble()

    def affected(self, instance: Model) -> Iterable[Any] | Every:
        """The users whose part a change to ``instance`` affects, or ``EVERY``."""
        return EVERY if isinstance(instance, self.reads) else ()

    def __repr__(self) -> str:
        name = getattr(self._assemble, "__qualname__", repr(self._assemble))
        return f"{type(self).__name__}({name})"


class Shared(Part):
    """A part with one value for every document that holds it (the catalog): assembled
    once per change, whatever the number of users and roles that hold it.

    ``assemble()`` takes no argument."""


class PerUser(Part):
    """A part of a per-user role with a value per user (a customer's orders).

    ``assemble(user_id)`` takes the user's primary key. ``users(instance)`` names the
    users whose part a change to ``instance`` affects (an order: its customer); without
    it, a change to any model in ``reads`` affects every user's part."""

    per_user = True

    def __init__(
        self,
        assemble: Callable[[Any], Any],
        *,
        reads: Iterable[type[Model]] = (),
        users: Callable[[Any], Iterable[Any]] | None = None,
    ) -> None:
        super().__init__(assemble, reads=reads)
        self.users = users

    def affected(self, instance: Model) -> Iterable[Any] | Every:
        if not isinstance(instance, self.reads):
            return ()
        return EVERY if self.users is None else self.users(instance)


class _WholeBody(Part):
    """The single part of a role that declares ``assemble`` instead of ``parts``: the
    whole body, spread into the document, affected as ``Role.affected`` says."""

    def __init__(self, role: Role) -> None:
        super().__init__(role.assemble, reads=role.reads)
        self.role = role
        self.per_user = role.per_user

    def assemble(self, user_id: Any) -> Any:
        return self.role.assemble(user_id)

    def affected(self, instance: Model) -> Iterable[Any] | Every:
        affected = self.role.affected(instance)
        if isinstance(affected, Every):
            return EVERY
        return [group.user_id for group in affected]


class Role:
    """One projection of the data, for the users it ``applies_to``."""

    #: The role's name, sent as ``"role"`` in the document; a group name prefix.
    name: str = ""
    #: One document per user (group ``"<name>:<user id>"``) or one shared (group ``name``).
    per_user: bool = False
    #: The document's parts, by name, in order (see ``Shared``, ``PerUser``). A role
    #: without parts declares ``assemble`` (and ``reads``) instead.
    parts: dict[str, Part] = {}
    #: Without ``parts``: models the document reads (a change to one affects it).
    reads: tuple[type[Model], ...] = ()

    def applies_to(self, user: Any) -> bool:
        raise NotImplementedError

    def assemble(self, user_id: Any) -> dict[str, Any]:
        """Without ``parts``: the document's body, from the ORM, in a bounded number of
        queries.

        ``user_id`` is the group's user's primary key (as the user model types it) for
        a per-user role, None for a shared one."""
        raise NotImplementedError

    def affected(self, instance: Model) -> Iterable[DocGroup] | Every:
        """Without ``parts``: the groups a change to ``instance`` affects: ``EVERY``
        (the default, for a model in ``reads``), some ``group(...)``, or nothing."""
        return EVERY if isinstance(instance, self.reads) else ()

    # -- derived ------------------------------------------------------------------------

    def group(self, user_id: Any = None) -> DocGroup:
        """The group of ``user_id``'s document (the one shared group if not ``per_user``)."""
        return DocGroup(self.name, user_id if self.per_user else None)

    def group_of(self, user: Any) -> DocGroup:
        return self.group(user.pk)

    @cached_property
    def layout(self) -> tuple[tuple[str | None, Part], ...]:
        """The parts in document order; the name None is a body spread into the document."""
        if self.parts:
            return tuple(self.parts.items())
        return ((None, _WholeBody(self)),)

    @property
    def models(self) -> set[type[Model]]:
        return {model for _, part in self.layout for model in part.reads}

    def document(self, group: DocGroup) -> dict[str, Any]:
        """The whole document of ``group``, assembled now (``GET /api/doc``)."""
        document: dict[str, Any] = {"role": self.name}
        for name, part in self.layout:
            value = part.assemble(group.user_id)
            if name is None:
                document.update(value)
            else:
                document[name] = value
        return document


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
        return {model for role in self.roles for model in role.models}


#: The roles of the project, in priority order.
roles = RoleRegistry()


def register(*declared: Role) -> None:
    """Declare the project's roles; a user gets the first role that applies to them."""
    roles.register(*declared)
