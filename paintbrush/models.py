"""
``LiveModel``: the abstract base for models served as live resources.

    from paintbrush.models import LiveModel

    class Todo(LiveModel):
        title = models.CharField(max_length=200)
        done = models.BooleanField(default=False)

It adds the ``version`` field and wraps ``save()``/``delete()`` in ``transaction.atomic``
so that Paintbrush's ``pre_save`` can lock the row, read its previous state and assign
the next version in the same transaction as the write, from any caller (REST, the
admin, the shell), even in autocommit mode. Its manager, ``LiveManager``, does the same
for bulk writes (``paintbrush.bulk``).
"""

from __future__ import annotations

from typing import Any

from django.db import models, router, transaction

from .bulk import LiveManager
from .fields import VersionField


class LiveModel(models.Model):
    version = VersionField()

    #: Its bulk writes (``update()``, ``bulk_create()``, ``bulk_update()``, ``delete()``)
    #: publish like saves (``paintbrush.bulk``); a model's own manager derives from it.
    objects = LiveManager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "version" not in update_fields:
            # A partial save must still write the version it was given in pre_save.
            kwargs["update_fields"] = [*update_fields, "version"]
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        with transaction.atomic(using=using, savepoint=False):
            super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        with transaction.atomic(using=using, savepoint=False):
            return super().delete(*args, **kwargs)
