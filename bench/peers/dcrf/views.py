"""POST /api/todos through DRF, as the demo does it."""

from __future__ import annotations

from rest_framework import generics, serializers

from .models import Todo


class TodoSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    class Meta:
        model = Todo
        fields = ["id", "title", "done", "created_at", "version"]
        read_only_fields = ["id", "created_at", "version"]


class TodoCreate(generics.CreateAPIView):  # type: ignore[type-arg]
    queryset = Todo._default_manager.all()
    serializer_class = TodoSerializer
