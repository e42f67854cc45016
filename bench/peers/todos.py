"""The Todo both Django peers serve (the demo's fields), and its POST /api/todos
through DRF, as the demo does it. Each peer app declares the concrete model."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import models
from rest_framework import generics, serializers


class TodoFields(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    title = models.CharField(max_length=200)
    done = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        abstract = True
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.title


def create_view(
    model: type[TodoFields],
) -> tuple[type[serializers.ModelSerializer[Any]], type[generics.CreateAPIView[Any]]]:
    """The serializer and the create view of ``model``."""
    meta = type(
        "Meta",
        (),
        {
            "model": model,
            "fields": ["id", "title", "done", "created_at", "version"],
            "read_only_fields": ["id", "created_at", "version"],
        },
    )
    serializer = type("TodoSerializer", (serializers.ModelSerializer,), {"Meta": meta})
    view = type(
        "TodoCreate",
        (generics.CreateAPIView,),
        {"queryset": model._default_manager.all(), "serializer_class": serializer},
    )
    return serializer, view
