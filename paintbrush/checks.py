"""
System checks: declaration mistakes are reported by ``manage.py check`` (and at every
``runserver``/``migrate``/``test``) with stable ids, not by a traceback at the first
request.

=================  ============================================================
``paintbrush.E001``  two resources share one name
``paintbrush.E002``  a resource name is reserved (``doc``) or not usable as a topic
``paintbrush.E003``  a live resource's model is not a ``LiveModel`` (no version, no atomic save)
``paintbrush.E004``  live resources are declared but no channel layer is configured
``paintbrush.E005``  a ``PAINTBRUSH`` setting is unknown or has a bad value
``paintbrush.E007``  one model is registered as two resources
``paintbrush.E008``  a role's name is empty, not usable in a group name, or taken twice
``paintbrush.E009``  ``daphne``, ``channels`` or ``rest_framework`` is missing from ``INSTALLED_APPS``
``paintbrush.E010``  ``ASGI_APPLICATION`` is unset or cannot be imported
``paintbrush.E011``  the ASGI application routes no WebSocket, though resources or roles are live
``paintbrush.E012``  a role's parts are not ``Part``s, are named "role" or "", or are per-user in a shared role
``paintbrush.W001``  rows are filtered (``get_queryset``, or the viewset's) but event keys are not
``paintbrush.W002``  a channels-redis host without a ``socket_timeout`` above its 5 s blocking receive
``paintbrush.W003``  a live model's default manager does not make ``LiveQuerySet``s (bulk writes would not publish)
``paintbrush.W004``  anonymous users may write a resource by DRF's default permissions, which nobody chose for it
``paintbrush.W005``  WebSocket origins are checked by host only (Channels' ``AllowedHostsOriginValidator``)
=================  ============================================================

(``paintbrush.E006`` is retired: ``notify`` is a bool and the topic is the name.)
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Callable
from typing import Any, cast

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from django.utils.module_loading import import_string
from rest_framework.permissions import BasePermission

from .bulk import LiveQuerySet
from .documents.roles import ROLE_NAME, Part, Role, RoleRegistry, roles
from .frames import DOC
from .models import LiveModel
from .resources import Resource, ResourceRegistry, site
from .settings import DEFAULTS
from .views import LiveModelViewSet

RESERVED_NAMES = frozenset({DOC})
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,60}$")


def check_resources(registry: ResourceRegistry | None = None, **kwargs: Any) -> list[CheckMessage]:
    registry = registry or site
    errors: list[CheckMessage] = []
    names = Counter(r.name for r in registry.registrations)
    models = Counter(r.model for r in registry.registrations)
    for resource in registry.registrations:
        label = f"{resource.model._meta.label}"
        if names[resource.name] > 1:
            errors.append(
                Error(
                    f"Two resources are named {resource.name!r}.",
                    hint="Give each register() call its own name.",
                    obj=resource,
                    id="paintbrush.E001",
                )
            )
        if resource.name in RESERVED_NAMES or not _NAME.match(resource.name):
            errors.append(
                Error(
                    f"{resource.name!r} cannot be a resource name.",
                    hint=f"Names are 1-60 letters, digits, '-' or '_', and not one of {sorted(RESERVED_NAMES)} "
                    "(reserved for role documents).",
                    obj=resource,
                    id="paintbrush.E002",
                )
            )
        if resource.live and not issubclass(resource.model, LiveModel):
            # The version is assigned under a row lock in the save's transaction; a
            # plain model saved in autocommit mode has no transaction to lock in.
            errors.append(
                Error(
                    f"Live resource {resource.name!r}: model {label} is not a paintbrush.models.LiveModel.",
                    hint="Inherit paintbrush.models.LiveModel: it adds the version field and makes saves atomic.",
                    obj=resource,
                    id="paintbrush.E003",
                )
            )
        if models[resource.model] > 1:
            errors.append(
                Error(
                    f"Model {label} is registered as more than one resource.",
                    hint="Register each model once; customise one Resource instead.",
                    obj=resource,
                    id="paintbrush.E007",
                )
            )
        queryset = resource.model._default_manager.all()
        if resource.live and issubclass(resource.model, LiveModel) and not isinstance(queryset, LiveQuerySet):
            errors.append(
                Warning(
                    f"Live resource {resource.name!r}: {label}'s default manager makes "
                    f"{type(queryset).__name__}, not LiveQuerySet: its update(), bulk_create() and "
                    "delete() would publish nothing.",
                    hint="Derive the manager from paintbrush.bulk.LiveManager (or its queryset from LiveQuerySet).",
                    obj=resource,
                    id="paintbrush.W003",
                )
            )
        viewset = resource.viewset_class
        overridden = type(resource).get_queryset is not Resource.get_queryset or (
            viewset is not None
            and (
                viewset.get_queryset is not LiveModelViewSet.get_queryset
                or viewset.filter_queryset is not LiveModelViewSet.filter_queryset
            )
        )
        keys_kept = type(resource).event_keys is Resource.event_keys or (
            type(resource).subscription_keys is Resource.subscription_keys
        )
        # Or partitioned by a required scope whose reading it decides (paintbrush.scopes).
        keys_kept = keys_kept and not (
            resource.scope_required and type(resource).can_read_scope is not Resource.can_read_scope
        )
        if resource.live and overridden and keys_kept:
            errors.append(
                Warning(
                    f"Resource {resource.name!r} filters rows (get_queryset or its viewset) but does not "
                    "override event_keys() and "
                    "subscription_keys(): its events may reach users its queryset hides rows from.",
                    hint="Override both key hooks to partition events as the queryset does, or use owner_field.",
                    obj=resource,
                    id="paintbrush.W001",
                )
            )
    return errors


def check_roles(registry: RoleRegistry | None = None, **kwargs: Any) -> list[CheckMessage]:
    registry = registry or roles
    names = Counter(role.name for role in registry.roles)
    errors: list[CheckMessage] = []
    for role in registry.roles:
        if not isinstance(role.name, str) or not ROLE_NAME.match(role.name):
            # The name prefixes the document's groups ("customer:5" on the wire, and a
            # channel-layer group name): a ":" or "." would make them ambiguous.
            errors.append(
                Error(
                    f"Role {type(role).__name__} has the name {role.name!r}, which cannot name document groups.",
                    hint="Role names are 1-60 letters, digits, '-' or '_'.",
                    obj=role,
                    id="paintbrush.E008",
                )
            )
        elif names[role.name] > 1:
            errors.append(
                Error(
                    f"Two roles are named {role.name!r}.",
                    hint="Give each role its own name: it names the document's groups.",
                    obj=role,
                    id="paintbrush.E008",
                )
            )
        errors += _check_parts(role)
    return errors


def _check_parts(role: Role) -> list[CheckMessage]:
    parts = role.parts if isinstance(role.parts, dict) else {}
    problem = None
    if not isinstance(role.parts, dict):
        problem = "its parts are not a dict of names and Shared or PerUser parts"
    elif bad := [name for name, part in parts.items() if not isinstance(part, Part)]:
        problem = f"its parts {bad!r} are not Shared or PerUser parts"
    elif bad := [name for name in parts if not isinstance(name, str) or name in ("", "role")]:
        # "role" is the document's own member; "" names the body of a role without parts.
        problem = f"its parts are named {bad!r}"
    elif not role.per_user and (bad := [name for name, part in parts.items() if part.per_user]):
        problem = f"the parts {bad!r} are per user, but the role is shared by its users (per_user = False)"
    if problem is None:
        return []
    return [
        Error(
            f"Role {role.name!r} cannot be assembled: {problem}.",
            hint="Declare parts = {name: documents.Shared(...) or documents.PerUser(...)}; PerUser parts "
            "need per_user = True.",
            obj=role,
            id="paintbrush.E012",
        )
    ]


def check_channel_layer(registry: ResourceRegistry | None = None, **kwargs: Any) -> list[CheckMessage]:
    from .settings import pb_settings

    registry = registry or site
    if not any(r.live for r in registry.registrations):
        return []
    alias = pb_settings.CHANNEL_LAYER
    layers = getattr(settings, "CHANNEL_LAYERS", None) or {}
    if alias not in layers or "BACKEND" not in layers[alias]:
        return [
            Error(
                f"Live resources need a channel layer, but CHANNEL_LAYERS has no {alias!r} with a BACKEND.",
                hint='Set CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}} '
                "for one process, or channels_redis for several.",
                id="paintbrush.E004",
            )
        ]
    return _check_redis_timeout(layers[alias])


def _check_redis_timeout(layer: dict[str, Any]) -> list[CheckMessage]:
    # redis-py 6+ times a socket read out after 5 s by default: exactly the length of
    # channels-redis's blocking receive (BZPOPMIN, 5 s). A quiet hub channel then sees a
    # timeout every 5 s, and a message popped at that moment can be lost (Paintbrush
    # notices the gap and resyncs, but needlessly).
    if not str(layer.get("BACKEND", "")).startswith("channels_redis."):
        return []
    hosts = layer.get("CONFIG", {}).get("hosts") or ["redis://localhost:6379"]
    short = [h for h in hosts if not (isinstance(h, dict) and (h.get("socket_timeout") or 0) > 5)]
    if not short:
        return []
    return [
        Warning(
            "A channels-redis host has no socket_timeout above channels-redis's 5 s blocking receive: "
            "a quiet channel's receive times out.",
            hint='Give each host as {"address": "redis://...", "socket_timeout": 30}.',
            id="paintbrush.W002",
        )
    ]


def _networks(value: Any) -> bool:
    if not isinstance(value, list | tuple) or not all(isinstance(entry, str) for entry in value):
        return False
    try:
        for entry in value:
            ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False
    return True


_VALUE_RULES: list[tuple[str, Callable[[Any], bool], str]] = [
    ("MAX_FRAME_BYTES", lambda v: isinstance(v, int) and v > 0, "a positive int"),
    ("MAX_ERRORS_PER_MINUTE", lambda v: isinstance(v, int) and v > 0, "a positive int"),
    ("MAX_JSON_DEPTH", lambda v: isinstance(v, int) and 1 <= v <= 500, "an int from 1 to 500"),
    ("SNAPSHOT_FRAME_BYTES", lambda v: isinstance(v, int) and v >= 1024, "an int of at least 1024"),
    ("MAX_PENDING_BYTES", lambda v: isinstance(v, int) and v > 0, "a positive int"),
    ("SLOW_SOCKET_SECONDS", lambda v: isinstance(v, int | float) and v > 0, "a number > 0"),
    ("MAX_SOCKETS_PER_CLIENT", lambda v: isinstance(v, int) and v > 0, "a positive int"),
    ("MAX_SUBSCRIPTIONS_PER_SOCKET", lambda v: isinstance(v, int) and v > 0, "a positive int"),
    ("MAX_WINDOW", lambda v: isinstance(v, int) and v > 0, "a positive int"),
    ("SNAPSHOTS_PER_MINUTE", lambda v: isinstance(v, int) and v > 0, "a positive int"),
    ("WRITER_MAX_BACKLOG", lambda v: isinstance(v, int) and v > 0, "a positive int"),
    ("WRITER_WAIT_SECONDS", lambda v: isinstance(v, int | float) and v >= 0, "a number >= 0"),
    ("HUB_MAX_BACKLOG", lambda v: isinstance(v, int) and v > 1, "an int > 1"),
    ("DATABASE_RETRY_AFTER_SECONDS", lambda v: isinstance(v, int) and v > 0, "a positive int"),
    ("DOC_COALESCE_SECONDS", lambda v: isinstance(v, int | float) and v >= 0, "a number >= 0"),
    ("LAYER_PROBE_SECONDS", lambda v: isinstance(v, int | float) and v >= 0, "a number >= 0"),
    ("LAYER_TIMEOUT_SECONDS", lambda v: isinstance(v, int | float) and v > 0, "a number > 0"),
    ("CHANNEL_LAYER", lambda v: isinstance(v, str), "a channel-layer alias (str)"),
    ("AUTODISCOVER_MODULE", lambda v: isinstance(v, str) and v.isidentifier(), "a module name"),
    ("METRICS_ALLOWED_ADDRESSES", _networks, "a list of IP addresses or networks (str)"),
]


def check_settings(**kwargs: Any) -> list[CheckMessage]:
    user = getattr(settings, "PAINTBRUSH", {})
    if not isinstance(user, dict):
        return [Error(f"PAINTBRUSH must be a dict, not {type(user).__name__}.", id="paintbrush.E005")]
    errors: list[CheckMessage] = []
    for key in sorted(set(user) - set(DEFAULTS)):
        errors.append(
            Error(
                f"Unknown PAINTBRUSH setting {key!r}.",
                hint=f"Known settings: {sorted(DEFAULTS)}.",
                id="paintbrush.E005",
            )
        )
    for key, valid, expected in _VALUE_RULES:
        value = user.get(key, DEFAULTS[key])
        if isinstance(value, bool) or not valid(value):
            errors.append(Error(f"PAINTBRUSH[{key!r}] must be {expected}, not {value!r}.", id="paintbrush.E005"))
    return errors


# -- the project around Paintbrush --------------------------------------------------------

#: Apps Paintbrush needs in INSTALLED_APPS, with what goes wrong without each.
_REQUIRED_APPS: dict[str, tuple[str, str]] = {
    "daphne": (
        "runserver serves WSGI only: /ws answers 404.",
        'Put "daphne" first in INSTALLED_APPS (before django.contrib.staticfiles): its runserver '
        "serves the ASGI application, HTTP and WebSocket.",
    ),
    "channels": (
        "Paintbrush's WebSocket side is built on Channels.",
        'Add "channels" to INSTALLED_APPS.',
    ),
    "rest_framework": (
        "DRF's browsable API cannot find its templates: /api/ answers 500 in a browser.",
        'Add "rest_framework" to INSTALLED_APPS.',
    ),
}


def check_installed_apps(**kwargs: Any) -> list[CheckMessage]:
    from django.apps import apps

    return [
        Error(f"{name!r} is not in INSTALLED_APPS: {why}", hint=hint, id="paintbrush.E009")
        for name, (why, hint) in _REQUIRED_APPS.items()
        if not apps.is_installed(name)
    ]


_ASGI_HINT = (
    'Set ASGI_APPLICATION = "myproject.asgi.application", the ProtocolTypeRouter of your asgi.py '
    '(README, "Add Paintbrush to your project").'
)


def check_asgi_application(
    registry: ResourceRegistry | None = None, role_registry: RoleRegistry | None = None, **kwargs: Any
) -> list[CheckMessage]:
    path = getattr(settings, "ASGI_APPLICATION", None)
    if not path:
        return [
            Error(
                "ASGI_APPLICATION is not set: runserver and daphne have no application that serves /ws.",
                hint=_ASGI_HINT,
                id="paintbrush.E010",
            )
        ]
    try:
        # Imported here, as runserver imports it, never at module level: the project's
        # asgi.py sets Django up and imports Paintbrush's consumers. The apps are ready
        # by now, so an import that fails here fails under every server too.
        application = import_string(path)
    except Exception as exc:
        return [
            Error(
                f"ASGI_APPLICATION {path!r} cannot be imported: {type(exc).__name__}: {exc}",
                hint=_ASGI_HINT,
                id="paintbrush.E010",
            )
        ]
    registry = registry or site
    role_registry = role_registry or roles
    if not (any(r.live for r in registry.registrations) or role_registry.roles):
        return []
    if _routes_no_websocket(application):
        return [
            Error(
                f"ASGI_APPLICATION {path!r} routes no WebSocket: live resources and role documents "
                "cannot be subscribed to (/ws answers 404 or is refused).",
                hint='Make it a channels ProtocolTypeRouter with a "websocket" entry routing '
                "paintbrush.routing.websocket_urlpatterns (README, asgi.py).",
                id="paintbrush.E011",
            )
        ]
    if _checks_origin_host_only(application):
        return [
            Warning(
                f"ASGI_APPLICATION {path!r} checks a WebSocket's Origin by its host only (Channels' "
                "AllowedHostsOriginValidator): a page on another port or scheme of an allowed host may open "
                "sockets with the visitor's session, though Django's CSRF check refuses its requests.",
                hint='Wrap the "websocket" entry in paintbrush.origins.SameOriginValidator instead: '
                "the page's own scheme, host and port, or CSRF_TRUSTED_ORIGINS.",
                id="paintbrush.W005",
            )
        ]
    return []


def _routes_no_websocket(application: Any) -> bool:
    # Only what is certain: Django's own handler, or a router without a "websocket"
    # entry. An application wrapped in middleware we do not know is given the benefit
    # of the doubt.
    from channels.routing import ProtocolTypeRouter
    from django.core.handlers.asgi import ASGIHandler

    if isinstance(application, ASGIHandler):
        return True
    return isinstance(application, ProtocolTypeRouter) and "websocket" not in application.application_mapping


def _checks_origin_host_only(application: Any) -> bool:
    # AllowedHostsOriginValidator is an OriginValidator of ALLOWED_HOSTS: patterns with
    # no scheme, which match the Origin's host whatever its scheme and port. Only the
    # router's own "websocket" entry is looked at, as in _routes_no_websocket.
    from channels.routing import ProtocolTypeRouter
    from channels.security.websocket import OriginValidator

    if not isinstance(application, ProtocolTypeRouter):
        return False
    websocket = application.application_mapping.get("websocket")
    return isinstance(websocket, OriginValidator) and any("://" not in str(p) for p in websocket.allowed_origins)


# -- who may use a resource ---------------------------------------------------------------

_WRITES = (("POST", "create"), ("PUT", "update"), ("PATCH", "partial_update"), ("DELETE", "destroy"))


def check_anonymous_access(registry: ResourceRegistry | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Without ``REST_FRAMEWORK["DEFAULT_PERMISSION_CLASSES"]``, DRF lets anyone do
    anything (``AllowAny``): a resource that chose no permissions of its own is then
    writable, and live ones subscribable, by anonymous users. Chosen permissions, even
    ``[AllowAny]``, are the project's word and pass."""
    from rest_framework.settings import api_settings

    registry = registry or site
    # The stubs type the setting as its strings; DRF's accessor has imported them.
    defaults = cast("list[type[BasePermission]]", list(api_settings.DEFAULT_PERMISSION_CLASSES))
    messages: list[CheckMessage] = []
    for resource in registry.registrations:
        if _chose_permissions(resource):
            continue
        writes = any(_anonymous_may(resource, defaults, method, action) for method, action in _WRITES)
        if not writes:
            continue
        reads = _anonymous_may(resource, defaults, "GET", "list")
        what = ("read, subscribe to and change" if resource.live else "read and change") if reads else "change"
        names = ", ".join(p.__name__ for p in defaults) or "no permission classes at all"
        messages.append(
            Warning(
                f"Anonymous users may {what} resource {resource.name!r}: it takes DRF's "
                f"DEFAULT_PERMISSION_CLASSES ({names}), which nobody chose for it.",
                hint='Set REST_FRAMEWORK = {"DEFAULT_PERMISSION_CLASSES": '
                '["rest_framework.permissions.IsAuthenticated"]}, or give the resource permission_classes '
                "(permission_classes=[AllowAny] if anonymous writes are intended).",
                obj=resource,
                id="paintbrush.W004",
            )
        )
    return messages


def _chose_permissions(resource: Resource) -> bool:
    if resource.permission_classes is not None:
        return True
    for klass in (resource.viewset_class or LiveModelViewSet).__mro__:
        if klass is LiveModelViewSet:
            break
        if "permission_classes" in vars(klass) or "get_permissions" in vars(klass):
            return True
    return False


def _anonymous_may(
    resource: Resource, permission_classes: list[type[BasePermission]], method: str, action: str
) -> bool:
    from django.contrib.auth.models import AnonymousUser
    from django.http import HttpRequest
    from rest_framework.request import Request

    http = HttpRequest()
    http.method = method
    http.path = f"/api/{resource.name}"
    http.user = AnonymousUser()
    request = Request(http)
    request.user = http.user
    try:
        view = resource.get_viewset()(action=action, request=request, args=(), kwargs={}, format_kwarg=None)
        return all(permission().has_permission(request, view) for permission in permission_classes)
    except Exception:
        # A permission that needs more than a request (the database, a row) to decide:
        # it decides something, so it is not DRF's AllowAny.
        return False
