"""The relay's Todo (the demo's fields), and the ``post_save`` hook that publishes it."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from bench.peers.todos import TodoFields

GROUP = "todos"


class Todo(TodoFields):
    class Meta(TodoFields.Meta):
        app_label = "relay"


def _publish(text: str) -> None:
    async_to_sync(get_channel_layer().group_send)(GROUP, {"type": "todo.event", "text": text})


@receiver(post_save, sender=Todo)
def todo_saved(sender: Any, instance: Todo, created: bool, **kwargs: Any) -> None:
    from .views import TodoSerializer

    # Encoded once; every member of the group gets a copy of the same text.
    item = TodoSerializer(instance).data
    text = json.dumps({"resource": "todos", "action": "create" if created else "update", "item": item})
    transaction.on_commit(partial(_publish, text))
