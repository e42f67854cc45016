"""
The writer's side of the channel layer: what a committed write hands to the server
processes, whatever the pattern.

    send_on_commit([(event_group("todos", "all"), text)], using="default")

One channel-layer message per group, sent after the transaction commits, whatever the
number of sockets listening: each server process's hub is the only member of the
groups its sockets need (``paintbrush.hub``), so a message reaches each interested
process once and is fanned out there.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from asgiref.sync import async_to_sync
from channels.layers import BaseChannelLayer, get_channel_layer
from django.db import transaction

from .settings import pb_settings

logger = logging.getLogger("paintbrush")

__all__ = ["MESSAGE_TYPE", "send", "send_on_commit"]

#: The channel-layer message type that carries a text (an encoded event, or an empty
#: notice) to the hubs of a group.
MESSAGE_TYPE = "paintbrush.message"


def send_on_commit(messages: Sequence[tuple[str, str]], using: str) -> None:
    """After the current transaction on ``using`` commits, send each ``(group, text)``."""
    if not messages:
        return
    batch = list(messages)

    def send_committed() -> None:
        send(batch)

    # robust: the write has committed; a channel layer that is down must not turn a
    # successful request into a 500. It is logged instead.
    transaction.on_commit(send_committed, using=using, robust=True)


def send(messages: Sequence[tuple[str, str]]) -> None:
    """Hand each ``(group, text)`` to the channel layer, now."""
    layer = get_channel_layer(pb_settings.CHANNEL_LAYER)
    if layer is None:
        logger.warning("Paintbrush: no channel layer %r; messages dropped", pb_settings.CHANNEL_LAYER)
        return
    async_to_sync(_send_all)(layer, messages)


async def _send_all(layer: BaseChannelLayer, messages: Sequence[tuple[str, str]]) -> None:
    for group, text in messages:
        await layer.group_send(group, {"type": MESSAGE_TYPE, "group": group, "text": text})
