from __future__ import annotations

from django.apps import AppConfig
from django.core import checks
from django.utils.module_loading import autodiscover_modules


class PaintbrushConfig(AppConfig):
    name = "paintbrush"
    verbose_name = "Paintbrush"

    def ready(self) -> None:
        from . import access, metrics, writes
        from . import checks as pb_checks
        from .documents.notices import DocumentNotices
        from .events import EventPublisher
        from .settings import pb_settings

        checks.register(pb_checks.check_settings, "paintbrush")
        checks.register(pb_checks.check_resources, "paintbrush")
        checks.register(pb_checks.check_roles, "paintbrush")
        checks.register(pb_checks.check_channel_layer, "paintbrush")
        checks.register(pb_checks.check_installed_apps, "paintbrush")
        checks.register(pb_checks.check_asgi_application, "paintbrush")
        checks.register(pb_checks.check_anonymous_access, "paintbrush")
        # Every write is observed once, by paintbrush.writes, which hands it to these.
        writes.observers[:] = [
            EventPublisher(),
            DocumentNotices(),
            access.AccessNotices(),
            access.ScopeAccessNotices(),
        ]
        writes.connect()
        access.connect_receivers()
        metrics.observe()
        # Like admin.autodiscover(): each app declares its resources in live.py.
        autodiscover_modules(pb_settings.AUTODISCOVER_MODULE)
