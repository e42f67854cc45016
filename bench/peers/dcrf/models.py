"""The peer's Todo (the demo's fields)."""

from __future__ import annotations

import uuid

from django.db import models


class Todo(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    title = models.CharField(max_length=200)
    done = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        app_label = "dcrf"
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.title
