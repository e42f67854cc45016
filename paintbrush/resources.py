"""
Declaring resources: a model exposed under ``/api/<name>``, and, with ``notify=True``,
published as delta events on the topic ``<name>``.

    # myapp/live.py  (imported at start-up, like admin.py)
    from paintbrush.resources import Resource, register
    from .models import Note, Order, Todo

    register(Todo, name="todos", notify=True)     # live: REST + events on topic "todos"
    register(Note, name="notes")                  # REST only

    class OrderResource(Resource):
        owner_field = "user"                      # customers see their own rows only
        permission_classes = [IsAuthenticated]

    register(Order, OrderResource, name="orders", notify=True)

Everything a ``Resource`` derives (serializer, viewset, queryset) can be given instead,
as a class attribute or a keyword of ``register()``. Mistakes in declarations are
reported by the system checks in ``paintbrush.checks``, not raised here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from django.db import models
from rest_framework import serializers
from rest_framework.permissions import BasePermission

from . import scopes
from .fields import version_field

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser
    from rest_framework.viewsets import GenericViewSet

    User = AbstractBaseUser | AnonymousUser

__all__ = ["ALL", "Resource", "ResourceRegistry", "register", "site"]

#: The event key every subscriber of an unpartitioned resource listens to.
ALL = "all"


class Resource:
    """How one model is exposed. Override attributes, or the small hooks below."""

    #: Names of attributes that ``register(**options)`` may set.
    options: ClassVar[tuple[str, ...]] = (
        "name",
        "notify",
        "serializer_class",
        "fields",
        "read_only_fields",
        "viewset_class",
        "permission_classes",
        "queryset",
        "owner_field",
        "scope_fields",
        "scope_required",
        "ordering",
    )

    model: type[models.Model]
    name: str = ""
    #: Publish create/update/delete events on the topic ``name``.
    notify: bool = False
    #: A DRF serializer; derived from the model (``fields``/``read_only_fields``) if None.
    serializer_class: type[serializers.BaseSerializer[Any]] | None = None
    fields: Sequence[str] | str = "__all__"
    read_only_fields: Sequence[str] = ()
    #: A ``paintbrush.views.LiveModelViewSet`` subclass; derived if None.
    viewset_class: type[GenericViewSet] | None = None  # type: ignore[type-arg]
    #: DRF permission classes for REST and for ``opendoc``; DRF's default if None.
    permission_classes: Sequence[type[BasePermission]] | None = None
    #: Rows the resource shows at all; ``model._default_manager.all()`` if None.
    queryset: models.QuerySet[Any] | None = None
    #: A foreign key to the user: others' rows are neither listed nor pushed to
    #: non-staff users, and staff see every row.
    owner_field: str | None = None
    #: Fields a subscription may be narrowed by (``paintbrush.scopes``), filtered over
    #: REST too (``GET /api/<name>?<field>=<value>``, django-filter).
    scope_fields: Sequence[str] = ()
    #: A subscription must name a scope (``opendoc`` without ``where`` is ``bad_where``).
    scope_required: bool = False
    #: The order of the rows: of ``GET /api/<name>``, and of the windows ``last`` and
    #: ``before``. Its last field should be unique (``["created_at", "id"]``).
    ordering: Sequence[str] = ()

    def __init__(self, model: type[models.Model], **options: Any) -> None:
        unknown = set(options) - set(self.options)
        if unknown:
            raise TypeError(
                f"Unknown resource option(s) {sorted(unknown)} for {model.__name__}; "
                f"expected some of {list(self.options)}."
            )
        if not isinstance(options.get("notify", False), bool):
            # The seed's notify="todos" named the topic; here the topic is the name.
            raise TypeError(
                f"notify is True or False, not {options['notify']!r}: the topic is the resource's name "
                f"(register({model.__name__}, name=..., notify=True))."
            )
        self.model = model
        for key, value in options.items():
            setattr(self, key, value)
        if not self.name:
            self.name = f"{model._meta.model_name}s"
        self._viewset: type[GenericViewSet] | None = None  # type: ignore[type-arg]
        self._serializer: type[serializers.BaseSerializer[Any]] | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} ({self.model._meta.label})>"

    # -- REST --------------------------------------------------------------

    def get_serializer_class(self) -> type[serializers.BaseSerializer[Any]]:
        if self.serializer_class is not None:
            return self.serializer_class
        if self._serializer is None:
            read_only = {"id", "version", *self.read_only_fields}
            if self.owner_field:
                read_only.add(self.owner_field)
            meta = type(
                "Meta",
                (),
                {
                    "model": self.model,
                    "fields": self.fields,
                    "read_only_fields": tuple(sorted(read_only)),
                },
            )
            self._serializer = type(
                f"{self.model.__name__}Serializer",
                (serializers.ModelSerializer,),
                {"Meta": meta},
            )
        return self._serializer

    def get_viewset(self) -> type[GenericViewSet]:  # type: ignore[type-arg]
        from .views import LiveModelViewSet

        if self._viewset is None:
            base = self.viewset_class or LiveModelViewSet
            attrs: dict[str, Any] = {"resource": self}
            if self.viewset_class is None or getattr(base, "serializer_class", None) is None:
                attrs["serializer_class"] = self.get_serializer_class()
            if self.permission_classes is not None:
                attrs["permission_classes"] = list(self.permission_classes)
            if self.scope_fields:
                attrs["filterset_class"] = scopes.filterset_for(self)
            self._viewset = type(f"{self.model.__name__}ViewSet", (base,), attrs)
        return self._viewset

    def get_queryset(self, user: User) -> models.QuerySet[Any]:
        """Rows ``user`` may read: used by REST, snapshots and (through the event
        keys below) by events. Override it together with ``subscription_keys`` and
        ``event_keys`` so that sockets receive exactly what REST shows."""
        qs = self.queryset.all() if self.queryset is not None else self.model._default_manager.all()
        if self.owner_field and not getattr(user, "is_staff", False):
            if not user.is_authenticated:
                return qs.none()
            qs = qs.filter(**{self.owner_field: user.pk})
        return qs.order_by(*self.ordering) if self.ordering else qs

    def can_read_scope(self, user: User, where: dict[str, Any]) -> bool:
        """May ``user`` read the rows of ``where`` (a checked scope, ``paintbrush.scopes``)?
        Asked at ``opendoc`` and again when an access change concerns the user; runs
        off the event loop, so the ORM may be used. A scope that does not exist must
        answer as one that may not be read: the client learns nothing of it."""
        return True

    # -- events -------------------------------------------------------------
    #
    # Row-level visibility over WebSocket is a partition of the events into keys:
    # a socket listens to the keys of its user, a row's event goes to the keys of
    # its row. This keeps the writer's cost O(keys), not O(subscribers): the event
    # is built once and sent once per key, whoever is listening.

    def subscription_keys(self, user: User) -> Iterable[str]:
        """Event keys a socket of ``user`` listens to once subscribed."""
        if self.owner_field and not getattr(user, "is_staff", False):
            return [f"user.{user.pk}"]
        return [ALL]

    def event_keys(self, instance: models.Model) -> Iterable[str]:
        """Event keys an event about ``instance`` goes to; empty if nobody may see it.

        Called with the row's state before a change (``pre_save``, the row still
        stored as it was) and after it, so a row that moves between keys reaches the
        old ones as ``delete`` and the new ones as ``create``.
        """
        if self.queryset is not None and not self.queryset.filter(pk=instance.pk).exists():
            return []
        if self.owner_field:
            owner = getattr(instance, f"{self.owner_field}_id", None)
            return [ALL] if owner is None else [ALL, f"user.{owner}"]
        return [ALL]

    # -- introspection --------------------------------------------------------

    @property
    def live(self) -> bool:
        return bool(self.notify)

    @property
    def version_field(self) -> str | None:
        return version_field(self.model)


class ResourceRegistry:
    """All declared resources, by name and by model."""

    def __init__(self) -> None:
        #: Every registration in order, duplicates included (checks report them).
        self.registrations: list[Resource] = []
        self._by_name: dict[str, Resource] = {}
        self._by_model: dict[type[models.Model], Resource] = {}

    def register(
        self,
        model: type[models.Model],
        resource_class: type[Resource] = Resource,
        **options: Any,
    ) -> Resource:
        resource = resource_class(model, **options)
        self.registrations.append(resource)
        self._by_name.setdefault(resource.name, resource)
        self._by_model.setdefault(model, resource)
        return resource

    def get(self, name: str) -> Resource | None:
        return self._by_name.get(name)

    def for_model(self, model: type[models.Model]) -> Resource | None:
        return self._by_model.get(model)

    def __iter__(self) -> Iterator[Resource]:
        return iter(list(self._by_name.values()))


#: The registry that ``register()``, ``paintbrush.urls`` and the consumer use.
site = ResourceRegistry()


def register(model: type[models.Model], resource_class: type[Resource] = Resource, **options: Any) -> Resource:
    """Declare ``model`` as a resource on the default registry; returns the Resource."""
    return site.register(model, resource_class, **options)
