"""
Who may read a resource over WebSocket: the resource's own DRF viewset decides, with
its permission classes and queryset, exactly as it would for ``GET /api/<name>``.

    view = list_view(resource, user)      # raises Forbidden if the user may not list
    items = snapshot_items(view)          # what GET /api/<name> would return

Access is decided when a socket subscribes; when it may have changed (the user is
deactivated, gains or loses staff, superuser, groups or permissions, signs out, or is
deleted), every socket of that user is closed with ``ACCESS_CHANGED``. The client
reconnects, and subscribes again under the new rules.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django.contrib.auth import get_user_model, user_logged_out
from django.core.exceptions import FieldDoesNotExist
from django.db import transaction
from django.db.models import Model
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete, pre_save
from django.http import HttpRequest
from rest_framework.exceptions import APIException
from rest_framework.request import Request

from .exceptions import Forbidden
from .publish import is_login_bookkeeping, send_to_groups, stored_row
from .resources import Resource


def list_view(resource: Resource, user: Any) -> Any:
    """A viewset instance set up as for ``GET /api/<name>`` by ``user``; raises
    ``Forbidden`` when its permission classes refuse."""
    http = HttpRequest()
    http.method = "GET"
    http.path = f"/api/{resource.name}"
    http.user = user
    request = Request(http)
    request.user = user  # the socket already authenticated its user (AuthMiddlewareStack)
    view = resource.get_viewset()(action="list", request=request, args=(), kwargs={}, format_kwarg=None)
    try:
        view.check_permissions(request)
    except APIException as exc:
        raise Forbidden(f"You may not read {resource.name!r}: {exc.detail}") from exc
    return view


def snapshot_items(view: Any) -> list[Any]:
    queryset = view.filter_queryset(view.get_queryset())
    return list(view.get_serializer(queryset, many=True).data)


#: WebSocket close code for "your access changed: reconnect" (application range 4000-4999).
ACCESS_CHANGED = 4003

_FLAGS = ("is_active", "is_staff", "is_superuser")
_STATE = "_paintbrush_access_flags"


def user_group(user_id: Any) -> str:
    """The channel-layer group every socket of a signed-in user listens to."""
    return f"paintbrush.user.{user_id}"


def _flags(user: Any) -> tuple[Any, ...]:
    return tuple(getattr(user, flag, None) for flag in _FLAGS)


def _access_changed(user_id: Any, using: str = "default") -> None:
    transaction.on_commit(partial(send_to_groups, [(user_group(user_id), "")]), using=using, robust=True)


def _before_user_save(
    sender: type[Model], instance: Any, raw: bool = False, using: str = "default", **kwargs: Any
) -> None:
    if raw or is_login_bookkeeping(kwargs.get("update_fields")):
        return
    stored = stored_row(sender, instance, using)
    if stored is not None:
        instance.__dict__[_STATE] = _flags(stored)


def _after_user_save(sender: type[Model], instance: Any, using: str = "default", **kwargs: Any) -> None:
    before = instance.__dict__.pop(_STATE, None)
    if before is not None and before != _flags(instance):
        _access_changed(instance.pk, using)


def _after_user_delete(sender: type[Model], instance: Any, using: str = "default", **kwargs: Any) -> None:
    _access_changed(instance.pk, using)


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
    User = get_user_model()
    pre_save.connect(_before_user_save, sender=User, dispatch_uid="paintbrush.access.pre_save")
    post_save.connect(_after_user_save, sender=User, dispatch_uid="paintbrush.access.post_save")
    post_delete.connect(_after_user_delete, sender=User, dispatch_uid="paintbrush.access.post_delete")
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
