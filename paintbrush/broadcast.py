"""
The writer's side of the channel layer: what a committed write hands to the server
processes, whatever the pattern.

    send_on_commit([(event_group("todos", "all"), text)], using="default")

One channel-layer message per group, sent after the transaction commits, whatever the
number of sockets listening: each server process's hub is the only member of the
groups its sockets need (``paintbrush.hub``), so a message reaches each interested
process once and is fanned out there.

Nothing is lost unnoticed. Each process numbers its messages per group (``origin``,
``seq`` of a ``paintbrush.frames.LayerMessage``), so a hub that finds a number skipped knows a message was lost between
processes. A message the channel layer refuses (Redis restarting) never fails the
write, which has committed: it is logged and counted, and a ``lost`` marker is sent to
its group as soon as the layer takes messages again, so that the subscriptions it was
for resync.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import BaseChannelLayer, get_channel_layer
from django.db import transaction

from . import metrics
from .frames import LayerMessage
from .settings import pb_settings

logger = logging.getLogger("paintbrush")

__all__ = ["send", "send_on_commit", "stats"]

_RETRY_SECONDS = (0.2, 0.5, 1.0, 2.0)

#: How long an ending process keeps trying to send the markers it owes.
_EXIT_GRACE = 10.0
#: Groups whose message numbers a process remembers; the least recently written are
#: forgotten past that (a process that writes to many short-lived groups, one per
#: room or user, must not grow without end).
_MAX_GROUPS = 10_000

_lock = threading.Lock()
#: group -> (origin, number of the last message sent to it), least recently written first.
_seq: OrderedDict[str, tuple[str, int]] = OrderedDict()
#: Groups whose messages the channel layer refused, owed a ``lost`` marker.
_unsent: set[str] = set()
_stop = threading.Event()


class _Process:
    #: (pid, name): the name is made anew in a forked child.
    origin: tuple[int, str] = (0, "")
    #: Groups forgotten so far. A group written again after it was forgotten is numbered
    #: anew under another origin name (``<origin>.<forgotten>``), so that no hub takes
    #: its new numbers for old ones.
    forgotten = 0
    retrying: threading.Thread | None = None


#: Counters over the process's life: messages sent, refused, and markers sent.
stats = {"sent": 0, "failed": 0, "markers": 0}


def _origin_id() -> str:
    """This process's name on the wire: unique per process, and new after a fork."""
    pid = os.getpid()
    if _Process.origin[0] != pid:
        _Process.origin = (pid, f"{pid}.{uuid.uuid4().hex[:12]}")
        _Process.forgotten = 0
        _seq.clear()
        _unsent.clear()
    return _Process.origin[1]


def _number(group: str, text: str | None) -> dict[str, Any]:
    with _lock:
        process = _origin_id()
        last: tuple[str, int] | None = _seq.pop(group) if group in _seq else None
        origin, seq = last or (process + (f".{_Process.forgotten}" if _Process.forgotten else ""), 0)
        seq += 1
        _seq[group] = (origin, seq)  # now the most recently written
        if len(_seq) > _MAX_GROUPS:
            _seq.popitem(last=False)
            _Process.forgotten += 1
    return LayerMessage(group, origin, seq, text).to_layer()


def send_on_commit(messages: Sequence[tuple[str, str]], using: str) -> None:
    """After the current transaction on ``using`` commits, send each ``(group, text)``."""
    if not messages:
        return
    batch = list(messages)

    def send_committed() -> None:
        send(batch)

    # robust: whatever goes wrong in sending, the write has committed and its response
    # must say so (send() itself never raises; this guards the unforeseen).
    transaction.on_commit(send_committed, using=using, robust=True)


def send(messages: Sequence[tuple[str, str]]) -> None:
    """Hand each ``(group, text)`` to the channel layer, now. Never raises: a message
    the layer refuses is logged, counted, and its group told later (``lost``)."""
    layer = get_channel_layer(pb_settings.CHANNEL_LAYER)
    if layer is None:
        logger.warning("Paintbrush: no channel layer %r; messages dropped", pb_settings.CHANNEL_LAYER)
        return
    failed = async_to_sync(_send_all)(layer, [_number(group, text) for group, text in messages])
    if failed:
        with _lock:
            _unsent.update(failed)
        _retry_later()
    elif _unsent:
        _send_markers(layer)


async def _send_all(layer: BaseChannelLayer, messages: list[dict[str, Any]]) -> list[str]:
    failed: list[str] = []
    for message in messages:
        if failed:  # the layer just refused one: do not wait on it for every message
            failed.append(message["group"])
            continue
        try:
            # Bounded: on a connection dropped without a word the send would wait for
            # a reply that never comes (the write's response with it).
            await asyncio.wait_for(layer.group_send(message["group"], message), pb_settings.LAYER_TIMEOUT_SECONDS)
        except Exception as exc:
            failed.append(message["group"])
            logger.warning("Paintbrush: the channel layer refused a message to %r: %r", message["group"], exc)
    with _lock:
        stats["sent"] += len(messages) - len(failed)
        stats["failed"] += len(failed)
    metrics.published(len(messages) - len(failed), len(failed))
    await _backpressure()
    return failed


async def _backpressure() -> None:
    """A writer inside a server process (a request's ``on_commit``, run on the server's
    event loop) waits while that process's fan-out is behind: one writer as fast as it
    can must not queue events faster than they reach the sockets."""
    from .hub import hubs_of_this_loop  # the hub belongs to the server side

    for hub in hubs_of_this_loop():
        await hub.below(pb_settings.WRITER_MAX_BACKLOG, pb_settings.WRITER_WAIT_SECONDS)


def _send_markers(layer: BaseChannelLayer, *, exiting: bool = False) -> bool:
    """Tell each group owed it that a message to it was lost; True when all went."""
    with _lock:
        groups = sorted(_unsent)
    if not groups:
        return True
    markers = [_number(group, None) for group in groups]
    # At exit, async_to_sync can no longer start its thread (concurrent.futures refuses
    # new work once the interpreter shuts down): a loop of our own, in this thread.
    failed = asyncio.run(_send_all(layer, markers)) if exiting else async_to_sync(_send_all)(layer, markers)
    with _lock:
        _unsent.difference_update(set(groups) - set(failed))
        stats["markers"] += len(groups) - len(failed)
        return not _unsent


def _retry_later() -> None:
    """Keep trying, in a thread of its own, until the markers are out: a process that
    writes nothing more must still let its subscribers know."""
    with _lock:
        if _Process.retrying is not None and _Process.retrying.is_alive():
            return
        _Process.retrying = threading.Thread(target=_retry, name="paintbrush-markers", daemon=True)
        _Process.retrying.start()


def _retry() -> None:
    attempt = 0
    while not _stop.wait(_RETRY_SECONDS[min(attempt, len(_RETRY_SECONDS) - 1)]):
        attempt += 1
        layer = get_channel_layer(pb_settings.CHANNEL_LAYER)
        if layer is None:
            return
        _send_markers(layer)
        with _lock:
            # Decided under the lock that _retry_later takes: a refusal recorded after
            # this point finds no thread and starts one.
            if not _unsent:
                _Process.retrying = None
                return


@atexit.register
def _flush_at_exit() -> None:
    """A process that ends owing markers (a management command whose writes the layer
    refused) keeps trying for up to ``_EXIT_GRACE`` seconds: the retry thread is a
    daemon, and nobody else would ever tell the subscribers."""
    if not _unsent or _Process.origin[0] != os.getpid():
        return
    _stop.set()  # the retry thread ends; this one takes over
    layer = get_channel_layer(pb_settings.CHANNEL_LAYER)
    if layer is None:
        return
    logger.warning(
        "Paintbrush: %s groups are owed a lost-message marker; trying to send them before exiting", len(_unsent)
    )
    deadline = time.monotonic() + _EXIT_GRACE
    attempt = 0
    while not _send_markers(layer, exiting=True):
        pause = _RETRY_SECONDS[min(attempt, len(_RETRY_SECONDS) - 1)]
        attempt += 1
        if time.monotonic() + pause > deadline:
            logger.error(
                "Paintbrush: exiting with %s lost-message markers unsent; their subscribers resync "
                "only when their own server loses the channel layer",
                len(_unsent),
            )
            return
        time.sleep(pause)
