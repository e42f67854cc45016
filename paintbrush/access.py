"""
When a user's access changes, their sockets close.

What a socket may read is decided when it subscribes (``paintbrush.permissions``). When
that may have changed (the user is deactivated, gains or loses staff, superuser,
groups or permissions, signs out, or is deleted), every socket of that user is closed
with ``ACCESS_CHANGED``; the client reconnects, and subscribes again under the new
rules.

Writer side: ``AccessNotices`` (a ``paintbrush.writes`` observer of the user model) and
receivers of ``m2m_changed``, group deletion and ``user_logged_out`` send an empty
notice to the user's access group after commit. Socket side: ``AccessWatchMixin``
listens to that group.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING, Any

from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model, user_logged_out
from django.core.exceptions import FieldDoesNotExist, ObjectDoesNotExist
from django.db.models.signals import m2m_changed, pre_delete

from .broadcast import send_on_commit
from .groups import access_group
from .hub import Membership
from .writes import Write

__all__ = ["ACCESS_CHANGED", "SCOPES", "AccessNotices", "AccessWatchMixin", "ScopeAccessNotices", "watch"]

#: WebSocket close code for "your access changed: reconnect" (application range 4000-4999).
ACCESS_CHANGED = 4003

_FLAGS = ("is_active", "is_staff", "is_superuser")


def _flags(user: Any) -> tuple[Any, ...]:
    return tuple(getattr(user, flag, None) for flag in _FLAGS)


def _access_changed(user_id: Any, using: str = "default") -> None:
    send_on_commit([(access_group(user_id), "")], using)


#: The text of a notice that only scopes may have changed (a membership): the socket
#: asks each scoped subscription's ``can_read_scope`` again instead of closing.
SCOPES = "scopes"

#: model -> the users whose scope access a row of it decides (``watch``).
_watched: dict[type[Any], Callable[[Any], Iterable[Any]]] = {}


def watch(model: type[Any], users: Callable[[Any], Iterable[Any]]) -> None:
    """Declare that rows of ``model`` decide who may read scopes (``paintbrush.scopes``):
    when one is created, changed or deleted, each user ``users(row)`` names (before and
    after the write) has their scoped subscriptions checked again, and those they may no
    longer read are closed (``{"type": "closed", ..., "reason": "forbidden"}``).

        access.watch(Membership, users=lambda membership: [membership.user_id])
    """
    _watched[model] = users


# -- writer side ---------------------------------------------------------------------------


class AccessNotices:
    """The ``paintbrush.writes`` observer of the user model: its flags, and deletion."""

    def before(self, write: Write) -> tuple[Any, ...] | None:
        if write.model is not get_user_model() or write.creating or write.is_login_bookkeeping:
            return None
        if write.deleting:
            return ()
        stored = write.stored
        return None if stored is None else _flags(stored)

    def after(self, write: Write, flags: tuple[Any, ...]) -> None:
        if write.deleting or flags != _flags(write.instance):
            _access_changed(write.instance.pk, write.using)


class ScopeAccessNotices:
    """The ``paintbrush.writes`` observer of the models ``watch`` names."""

    def before(self, write: Write) -> set[Any] | None:
        users = _watched.get(write.model)
        if users is None:
            return None
        row = write.stored if not write.creating else None
        return set(users(row)) if row is not None else set()

    def after(self, write: Write, before: set[Any]) -> None:
        users = _watched[write.model]
        affected = before | (set() if write.deleting else set(users(write.instance)))
        send_on_commit([(access_group(pk), SCOPES) for pk in sorted(affected, key=str)], write.using)


_MEMBERS = "_paintbrush_members"


def _group_members(group_pks: Any) -> list[Any]:
    User = get_user_model()
    return list(User._default_manager.filter(groups__in=list(group_pks)).values_list("pk", flat=True).distinct())


def _user_m2m_changed(
    field: Any, sender: Any, *, instance: Any, action: str, pk_set: Any, using: str = "default", **kwargs: Any
) -> None:
    """``user.groups`` / ``user.user_permissions`` changed, from either side."""
    User = get_user_model()
    if action == "pre_clear" and not isinstance(instance, User):
        # group.user_set.clear() sends no pk_set: remember the members now.
        through = sender._default_manager.filter(**{field.m2m_reverse_field_name(): instance.pk})
        instance.__dict__[_MEMBERS] = list(through.values_list(f"{field.m2m_field_name()}_id", flat=True))
        return
    if not action.startswith("post_"):
        return
    if isinstance(instance, User):
        users = [instance.pk]
    elif action == "post_clear":
        users = instance.__dict__.pop(_MEMBERS, [])
    else:
        users = list(pk_set or ())
    for pk in users:
        _access_changed(pk, using)


def _group_permissions_changed(
    sender: Any, *, instance: Any, action: str, reverse: bool, pk_set: Any, using: str = "default", **kwargs: Any
) -> None:
    """A group's permissions changed: so did its members' access."""
    if action == "pre_clear":
        groups = (
            [instance.pk]
            if not reverse
            else list(sender._default_manager.filter(permission=instance.pk).values_list("group_id", flat=True))
        )
        instance.__dict__[_MEMBERS] = _group_members(groups)
        return
    if not action.startswith("post_"):
        return
    if action == "post_clear":
        users = instance.__dict__.pop(_MEMBERS, [])
    else:
        users = _group_members(pk_set or ()) if reverse else _group_members([instance.pk])
    for pk in users:
        _access_changed(pk, using)


def _before_group_delete(sender: Any, instance: Any, using: str = "default", **kwargs: Any) -> None:
    for pk in _group_members([instance.pk]):
        _access_changed(pk, using)


def _after_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None and user.pk is not None:
        _access_changed(user.pk)


def connect_receivers() -> None:
    """The access changes that are not saves or deletes of a user (those are observed
    through ``paintbrush.writes``)."""
    User = get_user_model()
    user_logged_out.connect(_after_logout, dispatch_uid="paintbrush.access.logout")
    for name in ("groups", "user_permissions"):
        try:
            field = User._meta.get_field(name)
        except FieldDoesNotExist:  # a custom user model without PermissionsMixin
            continue
        m2m_changed.connect(
            partial(_user_m2m_changed, field),
            sender=field.remote_field.through,  # type: ignore[union-attr]
            weak=False,
            dispatch_uid=f"paintbrush.access.{name}",
        )
        if name == "groups":
            group = field.related_model
            m2m_changed.connect(
                _group_permissions_changed,
                sender=group.permissions.through,  # type: ignore[union-attr]
                dispatch_uid="paintbrush.access.group_permissions",
            )
            pre_delete.connect(_before_group_delete, sender=group, dispatch_uid="paintbrush.access.group_delete")


# -- socket side ----------------------------------------------------------------------------


def fingerprint(user: Any, session: Any = None) -> tuple[Any, ...]:
    """What a user's access is made of: their flags, groups and permissions (group
    permissions included), and whether their session still exists (sign-out ends it).
    Read from the database, for a socket that may have missed an access notice."""
    fresh = get_user_model()._default_manager.filter(pk=user.pk).first()
    if fresh is None:
        return ("gone",)
    groups = frozenset(fresh.groups.values_list("pk", flat=True)) if hasattr(fresh, "groups") else frozenset()
    permissions = frozenset(fresh.get_all_permissions()) if hasattr(fresh, "get_all_permissions") else frozenset()
    key = getattr(session, "session_key", None)
    signed_in = session.exists(key) if key else None
    return (*_flags(fresh), groups, permissions, signed_in)


class AccessWatchMixin:
    """For consumers: close the socket when its user's access changes."""

    _access: Membership | None = None
    _fingerprint: tuple[Any, ...] | None = None

    if TYPE_CHECKING:  # provided by PaintbrushSocket
        scope: dict[str, Any]

        def close_later(self, code: int) -> None: ...

        async def join(
            self, group: str, on_message: Callable[[str], None], on_lost: Callable[[str], None]
        ) -> Membership: ...

        async def leave(self, membership: Membership) -> None: ...

    async def watch_access(self) -> bool:
        """Listen for changes of the user's access, then read the user again: a change
        committed before we listened is in that read. False if the user is gone or
        deactivated meanwhile."""
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            return True
        self._access = await self.join(access_group(user.pk), self._access_changed, self._access_lost)
        try:
            await database_sync_to_async(user.refresh_from_db)()
        except ObjectDoesNotExist:
            return False
        self._fingerprint = await database_sync_to_async(fingerprint)(user, self.scope.get("session"))
        return bool(user.is_active)

    async def unwatch_access(self) -> None:
        if self._access is not None:
            await self.leave(self._access)
            self._access = None

    def _access_changed(self, text: str) -> None:
        if text == SCOPES:
            self.scopes_changed()
            return
        # What this socket may read was decided under the old rules.
        self.close_later(ACCESS_CHANGED)

    def scopes_changed(self) -> None:
        """Hook: the user's access to scopes may have changed (``watch``)."""

    def _access_lost(self, reason: str) -> None:
        # A notice may have been lost (the channel layer was unreachable): compare the
        # user's access with what it was, rather than send every user back to start.
        asyncio.get_running_loop().create_task(self._recheck_access())

    async def _recheck_access(self) -> None:
        user = self.scope.get("user")
        if user is None or self._fingerprint is None:
            return
        now = await database_sync_to_async(fingerprint)(user, self.scope.get("session"))
        if now != self._fingerprint:
            self.close_later(ACCESS_CHANGED)
