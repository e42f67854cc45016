"""POST /api/todos through DRF, as the demo does it."""

from __future__ import annotations

from bench.peers.todos import create_view

from .models import Todo

TodoSerializer, TodoCreate = create_view(Todo)
