from __future__ import annotations

from django.urls import path

from .views import TodoCreate

urlpatterns = [path("api/todos", TodoCreate.as_view())]
