"""
The row version every live model carries, declared by ``paintbrush.models.LiveModel``.

Live resources inherit ``LiveModel`` rather than declaring this field themselves (check
``paintbrush.E003``): the version is assigned under a row lock in the save's
transaction (``paintbrush.writes``), and only ``LiveModel.save()`` guarantees there is
one, even in autocommit mode.
"""

from __future__ import annotations

import functools
from typing import Any

from django.db import models


class VersionField(models.PositiveIntegerField):  # type: ignore[type-arg]
    """1 when a row is created, plus exactly 1 for every committed change of it.

    Paintbrush assigns it in ``pre_save``; it is never editable in forms or via REST.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("default", 1)
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)


@functools.cache
def version_field(model: type[models.Model]) -> str | None:
    """The attribute name of ``model``'s ``VersionField``, if it has one (looked up once
    per model: it is asked on every write)."""
    for field in model._meta.concrete_fields:
        if isinstance(field, VersionField):
            return field.attname
    return None
