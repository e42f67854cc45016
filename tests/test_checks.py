"""One test per system check id (paintbrush.checks)."""

from __future__ import annotations

from typing import Any
from unittest import mock

from channels.routing import ProtocolTypeRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.core.handlers.asgi import ASGIHandler
from django.core.management import call_command
from django.db import models
from django.test import SimpleTestCase, override_settings
from rest_framework import permissions

from paintbrush import checks, documents
from paintbrush.documents.roles import RoleRegistry
from paintbrush.origins import SameOriginValidator
from paintbrush.resources import Resource, ResourceRegistry
from paintbrush.views import LiveModelViewSet
from project.demo.models import Checklist, Note, Todo

#: ASGI applications for paintbrush.E011, named by ASGI_APPLICATION below.
DJANGO_ONLY = ASGIHandler()
HTTP_ONLY = ProtocolTypeRouter({"http": DJANGO_ONLY})
#: For paintbrush.W005: sockets behind Channels' host-only origin check, and behind Paintbrush's.
HOST_ONLY = ProtocolTypeRouter({"http": DJANGO_ONLY, "websocket": AllowedHostsOriginValidator(DJANGO_ONLY)})
SAME_ORIGIN = ProtocolTypeRouter({"http": DJANGO_ONLY, "websocket": SameOriginValidator(DJANGO_ONLY)})


def ids(messages: list[Any]) -> list[str]:
    return [m.id for m in messages]


class CheckTests(SimpleTestCase):
    def registry(self, *entries: tuple[Any, dict[str, Any]]) -> ResourceRegistry:
        registry = ResourceRegistry()
        for model, options in entries:
            resource_class = options.pop("resource_class", Resource)
            registry.register(model, resource_class, **options)
        return registry

    def test_the_demo_project_passes_every_check(self) -> None:
        call_command("check", "--fail-level", "WARNING")

    def test_e001_two_resources_with_one_name(self) -> None:
        registry = self.registry((Todo, {"name": "items"}), (Checklist, {"name": "items"}))
        self.assertEqual(ids(checks.check_resources(registry)), ["paintbrush.E001", "paintbrush.E001"])

    def test_e002_the_reserved_name_doc_or_an_unusable_name(self) -> None:
        registry = self.registry((Todo, {"name": "doc"}), (Checklist, {"name": "has space"}))
        self.assertEqual(ids(checks.check_resources(registry)), ["paintbrush.E002", "paintbrush.E002"])

    def test_e003_a_live_model_that_is_not_a_live_model(self) -> None:
        registry = self.registry((Note, {"name": "notes", "notify": True}))
        messages = checks.check_resources(registry)
        self.assertEqual(ids(messages), ["paintbrush.E003"])
        self.assertIn("LiveModel", str(messages[0].hint))

    def test_w003_a_live_model_whose_default_manager_bypasses_live_querysets(self) -> None:
        registry = self.registry((Todo, {"name": "todos", "notify": True}))
        self.assertEqual(checks.check_resources(registry), [])
        with mock.patch.object(Todo._default_manager, "_queryset_class", models.QuerySet):
            messages = checks.check_resources(registry)
        self.assertEqual(ids(messages), ["paintbrush.W003"])
        self.assertIn("LiveManager", str(messages[0].hint))

    def test_a_rest_only_model_needs_no_version_field(self) -> None:
        self.assertEqual(checks.check_resources(self.registry((Note, {"name": "notes"}))), [])

    @override_settings(CHANNEL_LAYERS={})
    def test_e004_live_resources_without_a_channel_layer(self) -> None:
        registry = self.registry((Todo, {"name": "todos", "notify": True}))
        self.assertEqual(ids(checks.check_channel_layer(registry)), ["paintbrush.E004"])
        self.assertEqual(checks.check_channel_layer(self.registry((Note, {"name": "notes"}))), [])

    @override_settings(
        PAINTBRUSH={"MAX_FRAME_BYTES": -1, "DOC_COALESCE_SECONDS": "soon", "MAX_ERRORS_PER_MINUTE": 0, "TYPO": 1}
    )
    def test_e005_unknown_or_bad_settings(self) -> None:
        messages = checks.check_settings()
        self.assertEqual(ids(messages), ["paintbrush.E005"] * 4)
        self.assertIn("TYPO", messages[0].msg)

    def test_notify_is_a_bool_the_topic_is_the_name(self) -> None:
        # paintbrush.E006 (notify naming another topic) is retired: it cannot happen.
        with self.assertRaisesMessage(TypeError, "notify is True or False, not 'tasks'"):
            self.registry((Todo, {"name": "todos", "notify": "tasks"}))

    def test_e008_role_names_fit_group_names_and_are_unique(self) -> None:
        class Named(documents.Role):
            def __init__(self, name: str) -> None:
                self.name = name

        registry = RoleRegistry()
        registry.register(Named("ok"), Named("a:b"), Named(""), Named("twice"), Named("twice"))
        messages = checks.check_roles(registry)
        self.assertEqual(ids(messages), ["paintbrush.E008"] * 4)
        self.assertIn("'a:b'", messages[0].msg)

    def test_e012_parts_are_parts_with_usable_names_and_per_user_only_in_per_user_roles(self) -> None:
        names = iter(range(100))

        def role(parts: Any, per_user: bool = False) -> documents.Role:
            attributes = {"name": f"r{next(names)}", "parts": parts, "per_user": per_user}
            declared: documents.Role = type("R", (documents.Role,), attributes)()
            return declared

        shared, mine = documents.Shared(list), documents.PerUser(lambda user_id: [])
        fine = [role({"a": shared}), role({"a": shared, "b": mine}, per_user=True), role({})]
        wrong = [role({"a": list}), role({"role": shared}), role({"b": mine}), role([shared])]
        for declared, expected in ((fine, []), (wrong, ["paintbrush.E012"] * 4)):
            registry = RoleRegistry()
            registry.register(*declared)
            self.assertEqual(ids(checks.check_roles(registry)), expected)

    def test_e007_one_model_registered_twice(self) -> None:
        registry = self.registry((Todo, {"name": "todos", "notify": True}), (Todo, {"name": "tasks"}))
        self.assertEqual(ids(checks.check_resources(registry)), ["paintbrush.E007", "paintbrush.E007"])

    def test_w001_a_filtered_queryset_without_event_keys(self) -> None:
        class Mine(Resource):
            def get_queryset(self, user: Any) -> models.QuerySet[Any]:
                return super().get_queryset(user).filter(done=False)

        registry = self.registry((Todo, {"notify": True, "resource_class": Mine}))
        self.assertEqual(ids(checks.check_resources(registry)), ["paintbrush.W001"])

    def test_w001_a_viewset_that_filters_rows_without_event_keys(self) -> None:
        class Filtered(LiveModelViewSet):
            def get_queryset(self) -> models.QuerySet[Any]:
                return super().get_queryset().filter(done=False)

        registry = self.registry((Todo, {"notify": True, "viewset_class": Filtered}))
        self.assertEqual(ids(checks.check_resources(registry)), ["paintbrush.W001"])


class RedisTimeoutCheckTests(SimpleTestCase):
    def check(self, hosts: list[Any]) -> list[str]:
        layers = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": hosts}}}
        registry = ResourceRegistry()
        registry.register(Todo, name="todos", notify=True)
        with override_settings(CHANNEL_LAYERS=layers):
            return ids(checks.check_channel_layer(registry))

    def test_w002_a_redis_host_without_a_long_enough_socket_timeout(self) -> None:
        self.assertEqual(self.check(["redis://127.0.0.1:6379"]), ["paintbrush.W002"])
        self.assertEqual(self.check([{"address": "redis://127.0.0.1:6379", "socket_timeout": 5}]), ["paintbrush.W002"])
        self.assertEqual(self.check([{"address": "redis://127.0.0.1:6379", "socket_timeout": 30}]), [])


class ProjectCheckTests(SimpleTestCase):
    """The project around Paintbrush: its apps and its ASGI application."""

    def test_e009_daphne_channels_or_rest_framework_missing_from_installed_apps(self) -> None:
        self.assertEqual(checks.check_installed_apps(), [])
        missing = {"daphne", "channels", "rest_framework"}
        with mock.patch("django.apps.apps.is_installed", lambda name: name not in missing):
            messages = checks.check_installed_apps()
        self.assertEqual(ids(messages), ["paintbrush.E009"] * 3)
        self.assertEqual([m.msg.split()[0] for m in messages], ["'daphne'", "'channels'", "'rest_framework'"])
        self.assertIn("first", str(messages[0].hint))

    def test_e010_asgi_application_unset_or_not_importable(self) -> None:
        self.assertEqual(checks.check_asgi_application(), [])  # the demo's project.asgi
        with override_settings(ASGI_APPLICATION=None):
            messages = checks.check_asgi_application()
        self.assertEqual(ids(messages), ["paintbrush.E010"])
        self.assertIn("not set", messages[0].msg)
        with override_settings(ASGI_APPLICATION="tests.test_checks.NO_SUCH_APPLICATION"):
            messages = checks.check_asgi_application()
        self.assertEqual(ids(messages), ["paintbrush.E010"])
        self.assertIn("cannot be imported: ImportError", messages[0].msg)

    def test_e011_an_asgi_application_without_websocket_routes(self) -> None:
        live = ResourceRegistry()
        live.register(Todo, name="todos", notify=True)
        for path in ("tests.test_checks.DJANGO_ONLY", "tests.test_checks.HTTP_ONLY"):
            with self.subTest(path), override_settings(ASGI_APPLICATION=path):
                self.assertEqual(ids(checks.check_asgi_application(live, RoleRegistry())), ["paintbrush.E011"])
                # Nothing live, no roles: nothing needs a socket.
                self.assertEqual(checks.check_asgi_application(ResourceRegistry(), RoleRegistry()), [])

    def test_w005_websocket_origins_checked_by_host_only(self) -> None:
        live = ResourceRegistry()
        live.register(Todo, name="todos", notify=True)
        with override_settings(ASGI_APPLICATION="tests.test_checks.HOST_ONLY"):
            messages = checks.check_asgi_application(live, RoleRegistry())
        self.assertEqual(ids(messages), ["paintbrush.W005"])
        self.assertIn("SameOriginValidator", str(messages[0].hint))
        with override_settings(ASGI_APPLICATION="tests.test_checks.SAME_ORIGIN"):
            self.assertEqual(checks.check_asgi_application(live, RoleRegistry()), [])


class AnonymousAccessCheckTests(SimpleTestCase):
    def check(self, model: Any = Todo, **options: Any) -> list[Any]:
        registry = ResourceRegistry()
        registry.register(model, **{"name": "items", "notify": model is Todo, **options})
        return checks.check_anonymous_access(registry)

    @override_settings(REST_FRAMEWORK={})
    def test_w004_drf_default_allow_any_lets_anonymous_users_write(self) -> None:
        messages = self.check()
        self.assertEqual(ids(messages), ["paintbrush.W004"])
        self.assertIn("Anonymous users may read, subscribe to and change resource 'items'", messages[0].msg)
        self.assertIn("(AllowAny)", messages[0].msg)
        self.assertIn("DEFAULT_PERMISSION_CLASSES", str(messages[0].hint))
        self.assertIn("may read and change resource", self.check(Note)[0].msg)  # REST only: no subscribing

    @override_settings(REST_FRAMEWORK={})
    def test_permissions_the_resource_chose_pass_even_allow_any(self) -> None:
        self.assertEqual(self.check(permission_classes=[permissions.AllowAny]), [])

        class Open(LiveModelViewSet):
            permission_classes = [permissions.AllowAny]

        self.assertEqual(self.check(viewset_class=Open), [])

    def test_project_defaults_that_keep_anonymous_users_from_writing_pass(self) -> None:
        for default in ("IsAuthenticated", "IsAuthenticatedOrReadOnly", "DjangoModelPermissionsOrAnonReadOnly"):
            with (
                self.subTest(default),
                override_settings(
                    REST_FRAMEWORK={"DEFAULT_PERMISSION_CLASSES": [f"rest_framework.permissions.{default}"]}
                ),
            ):
                self.assertEqual(self.check(), [])

    @override_settings(REST_FRAMEWORK={"DEFAULT_PERMISSION_CLASSES": []})
    def test_w004_no_permission_classes_at_all(self) -> None:
        messages = self.check()
        self.assertEqual(ids(messages), ["paintbrush.W004"])
        self.assertIn("no permission classes at all", messages[0].msg)
