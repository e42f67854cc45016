"""
The consumer, per djangochannelsrestframework's README ("Subscribing to all instances of
a model", "Subscribing to a filtered list of models"): a ``model_observer`` with a
serializer, and an action that subscribes with the client's ``request_id``.

djangochannelsrestframework ships no type information and is installed for the
benchmark only (bench/requirements.txt), so its names are looked up at run time.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from .models import Todo
from .views import TodoSerializer

_dcrf = "djangochannelsrestframework"
AsyncAPIConsumer: Any = importlib.import_module(f"{_dcrf}.consumers").AsyncAPIConsumer
Decorator = Callable[[Callable[..., Any]], Any]
dcrf_action: Callable[..., Decorator] = importlib.import_module(f"{_dcrf}.decorators").action
model_observer: Callable[..., Decorator] = importlib.import_module(f"{_dcrf}.observer").model_observer


class TodoConsumer(AsyncAPIConsumer):
    @model_observer(Todo, serializer_class=TodoSerializer)
    async def todo_activity(
        self,
        message: Any,
        observer: Any = None,
        action: Any = None,
        subscribing_request_ids: tuple[Any, ...] = (),
        **kwargs: Any,
    ) -> None:
        for request_id in subscribing_request_ids:
            await self.send_json({"body": message, "action": action, "request_id": request_id})

    @dcrf_action()
    async def subscribe_to_todos(self, request_id: Any, **kwargs: Any) -> tuple[dict[str, Any], int]:
        await self.todo_activity.subscribe(request_id=request_id)
        return {}, 201
