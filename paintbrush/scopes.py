"""
Where a subscription is narrowed: a resource's *scope* (``docs/protocol.md``, section 2b).

    class MessageResource(Resource):
        scope_fields = ["room"]          # opendoc may say {"where": {"room": 3}}
        scope_required = True            # and must: no socket gets every room
        ordering = ["created_at", "id"]  # "last": 50 means the last 50 in this order

        def can_read_scope(self, user, where):      # runs off the event loop: the ORM is fine
            return Room.objects.readable_by(user).filter(pk=where["room"]).exists()

A ``where`` names values for some of the declared fields, each as the REST API renders
it. It is checked here (``check_where``: declared names, JSON types, a required scope),
then by the resource's ``can_read_scope``; the rows it holds are the ones
``GET /api/<name>?<field>=<value>`` lists, through the same django-filter filterset.

Routing stays O(scopes), not O(subscribers): a row's events go to one group per event
key (``Resource.event_keys``) and per scope the row belongs to (``scoped_keys``: every
non-empty combination of its declared fields' values), so a socket joins the groups of
its own scopes and gets exactly their events. A row whose field changes leaves one
scope and enters another: ``paintbrush.events`` sends ``delete`` to the old one and
``create`` to the new, as for any key.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from django.db import models

from .exceptions import BadWhere


class Resource(Protocol):
    """What scopes read of a resource (``paintbrush.resources.Resource``, which uses
    this module: named by shape, so that the two do not import each other)."""

    name: str
    model: type[models.Model]
    scope_fields: Sequence[str]
    scope_required: bool


__all__ = ["Where", "canonical", "check_where", "filterset_for", "scoped_keys", "token"]

#: A checked ``where``: field name -> value as the REST API renders it.
Where = dict[str, Any]

_STRING_FIELDS = (models.CharField, models.TextField, models.UUIDField, models.DateTimeField, models.DateField)


def canonical(where: Mapping[str, Any]) -> str:
    """One text per ``where``, whatever the order of its keys: a subscription's name."""
    return json.dumps(dict(sorted(where.items())), separators=(",", ":"), sort_keys=True)


def token(where: Mapping[str, Any]) -> str:
    """A channel-layer-safe name for a ``where`` (group names allow ASCII letters,
    digits, ``-``, ``_`` and ``.`` only, up to 100 characters)."""
    return "w" + hashlib.sha256(canonical(where).encode()).hexdigest()[:24]


def check_where(resource: Resource, where: Any) -> Where | None:
    """The ``where`` of an ``opendoc``, checked: None when absent (and the resource
    does not require one); ``BadWhere`` for a field that is not declared, a value of
    the wrong type, or a missing scope the resource requires."""
    fields = list(resource.scope_fields)
    if where is None:
        if resource.scope_required:
            raise BadWhere(f'{resource.name!r} is opened with a "where" naming one of {fields}.')
        return None
    if not isinstance(where, dict) or not where:
        raise BadWhere('"where" is a non-empty object of field names and values.')
    unknown = sorted(set(where) - set(fields))
    if unknown:
        raise BadWhere(f"{resource.name!r} may be narrowed by {fields} only, not {unknown}.")
    for name, value in where.items():
        expected = _json_type(resource.model._meta.get_field(name))
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            types = expected if isinstance(expected, tuple) else (expected,)
            kinds = " or ".join(sorted({kind.__name__ for kind in types}))
            raise BadWhere(f"where.{name} is a {kinds} as the REST API renders it, not {value!r}.")
    return dict(sorted(where.items()))  # keys sorted, as every frame carries them


def scoped_keys(resource: Resource, keys: Iterable[str], item: Mapping[str, Any]) -> dict[str, Where | None]:
    """The groups (by key) a row's event goes to, each with the ``where`` its frames
    carry: every event key as it is (None: the unscoped subscriptions, unless a scope
    is required) and, per key, one scope for each non-empty combination of the declared
    fields' values in ``item`` (the row as the REST API renders it)."""
    fields = sorted(name for name in resource.scope_fields if name in item)
    scopes = [
        {name: item[name] for name in combination}
        for size in range(1, len(fields) + 1)
        for combination in itertools.combinations(fields, size)
    ]
    routed: dict[str, Where | None] = {}
    for key in keys:
        if not resource.scope_required:
            routed[key] = None
        for where in scopes:
            routed[f"{key}.{token(where)}"] = where
    return routed


def filterset_for(resource: Resource) -> type[Any]:
    """The django-filter ``FilterSet`` of ``resource``'s scope fields, for its viewset
    (``GET /api/<name>?room=3``) and so for its snapshots. A foreign key is filtered by
    its value, not as a choice: django-filter's choice filter would look the row up and
    answer "not a valid choice" for a row that does not exist, while a private one
    gives an empty list, telling the two apart."""
    from django_filters import rest_framework as filters

    declared: dict[str, Any] = {}
    for name in resource.scope_fields:
        field = resource.model._meta.get_field(name)
        if isinstance(field, models.ForeignKey):
            kind = filters.CharFilter if _json_type(field) is str else filters.NumberFilter
            declared[name] = kind(field_name=name)
    meta = type("Meta", (), {"model": resource.model, "fields": list(resource.scope_fields)})
    return type(f"{resource.model.__name__}ScopeFilter", (filters.FilterSet,), {"Meta": meta, **declared})


def _json_type(field: Any) -> Any:
    """The JSON type of ``field`` as DRF renders it."""
    if isinstance(field, models.ForeignKey):
        field = field.target_field
    if isinstance(field, models.BooleanField):
        return bool
    if isinstance(field, models.UUIDField):
        return str
    if isinstance(field, models.IntegerField | models.AutoField):
        return int
    if isinstance(field, _STRING_FIELDS):
        return str
    return (str, int, float, bool)
