from __future__ import annotations

from django.apps import AppConfig
from django.core import checks
from django.utils.module_loading import autodiscover_modules


class PaintbrushConfig(AppConfig):
    name = "paintbrush"
    verbose_name = "Paintbrush"

    def ready(self) -> None:
        from . import access
        from . import checks as pb_checks
        from .doc_hub import connect_receivers as connect_document_receivers
        from .publish import connect_receivers
        from .settings import pb_settings

        checks.register(pb_checks.check_settings, "paintbrush")
        checks.register(pb_checks.check_resources, "paintbrush")
        checks.register(pb_checks.check_channel_layer, "paintbrush")
        connect_receivers()
        connect_document_receivers()
        access.connect_receivers()
        # Like admin.autodiscover(): each app declares its resources in live.py.
        autodiscover_modules(pb_settings.AUTODISCOVER_MODULE)
