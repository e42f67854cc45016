"""The peer's Todo (the demo's fields)."""

from __future__ import annotations

from bench.peers.todos import TodoFields


class Todo(TodoFields):
    class Meta(TodoFields.Meta):
        app_label = "dcrf"
