"""
The row version every live model carries.

    from paintbrush.fields import VersionField

    class Todo(models.Model):
        title = models.CharField(max_length=200)
        version = VersionField()

Or inherit ``paintbrush.models.LiveModel``, which declares it for you and makes every
save atomic (the version is assigned under a row lock, see ``paintbrush.publish``).
"""

from __future__ import annotations

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
