"""
Fan-out inside one server process.

Stock Channels puts every socket in the channel-layer group, so one event costs one
channel message per socket (about fifty times the CPU of a plain asyncio broadcast, see
the README's benchmarks). Here each process has one *hub* per event loop: the hub alone
is a member of the channel-layer groups its local sockets need, receives each message
once, and hands the same text to every local member. The writer's cost is one
``group_send`` per group (``paintbrush.broadcast``), independent of the number of
sockets and processes listening.

    hub = get_hub(layer)
    membership = await hub.join(event_group("todos", "all"), on_message, on_lost)
    ...                       # on_message(text) for each message to the group
    await hub.leave(membership)

Whoever joins says what a message means by the callback it joins with: an event to
forward, a document notice, an access notice. The hub never looks inside a text. The
callbacks are plain functions that must not block: a socket queues what it cannot
send at once (``paintbrush.outbox``), so one slow socket never delays the others.

Nothing is lost unnoticed. Each publishing process numbers its messages per group
(``paintbrush.broadcast``); a hub that sees a number skipped, or a marker saying a
message could not be sent, or its own channel-layer receive failing, calls the
``on_lost`` of the members concerned, which resync.

When the last local member of a group leaves, the hub leaves the group; when it has no
group left, its tasks end (nothing leaks past the last socket).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import metrics
from .settings import pb_settings

logger = logging.getLogger("paintbrush")

__all__ = ["SOCKETS_USE_THE_HUB", "Hub", "Membership", "get_hub"]

#: The ``channel_layer_alias`` of Paintbrush's consumers. Messages reach sockets through
#: the process hub, not per-socket channels, so a consumer needs no channel of its own:
#: an alias that names no layer gives it none.
SOCKETS_USE_THE_HUB = "paintbrush.sockets-use-the-hub"

_YIELD_EVERY = 64
_RENEW_SECONDS = 60.0
#: Longest wait between two tries to reach an unreachable channel layer: the protocol
#: wants a resync within 5 seconds of the layer coming back.
_MAX_BACKOFF = 2.0
#: Publishing processes remembered per group (their last message number); a process
#: forgotten and heard again is simply taken up anew.
_MAX_ORIGINS = 1024
#: How long a message number skipped may take to arrive before it counts as lost.
_GAP_GRACE = 1.0

LAYER_DOWN = "the channel layer was unreachable; events may have been missed"
MESSAGE_LOST = "an event from another server process was lost"


@dataclass
class _Origin:
    """What a hub heard of one publishing process in one group."""

    highest: int
    #: Numbers skipped so far, each with the loop time it counts as lost at.
    missing: dict[int, float] = field(default_factory=dict)


@dataclass(eq=False, frozen=True)
class Membership:
    """One local member of one group, as ``Hub.join`` returns it."""

    group: str
    #: Called with the text of each message sent to the group; must not block.
    on_message: Callable[[str], None]
    #: Called, with a reason, when messages to the group may have been lost: the
    #: member must resync. Must not block.
    on_lost: Callable[[str], None]


class Hub:
    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.members: dict[str, dict[Membership, None]] = {}  # insertion-ordered sets
        self.channel: str | None = None
        self._lock = asyncio.Lock()
        # Received, not yet fanned out. Receiving and fanning out are two tasks so that
        # the channel is drained at once even while a slow fan-out runs: channel layers
        # drop silently when a channel holds ``capacity`` messages (100 by default).
        self._pending: deque[tuple[str, str | None, int]] = deque()
        #: When each pending text message arrived (time.monotonic()), oldest first.
        self._received_at: deque[float] = deque()
        self._wake = asyncio.Event()
        #: Deliveries received and not yet made (each message counts its local members).
        self.backlog = 0
        self._drained = asyncio.Event()
        #: Messages dropped because the backlog passed HUB_MAX_BACKLOG, over the hub's life.
        self.dropped = 0
        self._tasks: list[asyncio.Task[None]] = []
        #: group -> publishing process -> number of the last message heard from it
        self._heard: dict[str, dict[str, _Origin]] = {}
        self._expiring: dict[str, asyncio.TimerHandle] = {}
        #: Messages lost to gaps or markers, over the hub's life.
        self.gaps = 0

    async def join(
        self,
        group: str,
        on_message: Callable[[str], None],
        on_lost: Callable[[str], None],
    ) -> Membership:
        membership = Membership(group, on_message, on_lost)
        async with self._lock:
            if self.channel is None:
                self.channel = await self.layer.new_channel("paintbrush.hub.")
            local = self.members.setdefault(group, {})
            if not local:
                self._heard[group] = {}
                try:
                    await self.layer.group_add(group, self.channel)
                except BaseException:
                    # Not joined: leave no empty group behind (it would keep the hub's
                    # tasks alive, and a later join would think the group joined).
                    del self.members[group]
                    self._heard.pop(group, None)
                    raise
            local[membership] = None
            if not self._tasks:
                loop = asyncio.get_running_loop()
                self._tasks = [
                    loop.create_task(self._receive(self.channel)),
                    loop.create_task(self._fan_out()),
                    loop.create_task(self._renew(self.channel)),
                ]
        return membership

    async def leave(self, membership: Membership) -> None:
        async with self._lock:
            local = self.members.get(membership.group)
            if local is None or membership not in local:
                return
            del local[membership]
            if local:
                return
            del self.members[membership.group]
            self._heard.pop(membership.group, None)
            timer = self._expiring.pop(membership.group, None)
            if timer is not None:
                timer.cancel()
            if not self.members:
                await self._stop()
            assert self.channel is not None
            try:
                await self.layer.group_discard(membership.group, self.channel)
            except Exception:
                # The layer is unreachable: the membership expires there by itself
                # (group_expiry), and the socket's clean-up must go on.
                logger.warning("Paintbrush: leaving group %r failed", membership.group, exc_info=True)

    async def _stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._pending.clear()
        for timer in self._expiring.values():
            timer.cancel()
        self._expiring.clear()
        self._received_at.clear()
        self.backlog = 0
        self._drained.set()

    async def _receive(self, channel: str) -> None:
        failures = 0
        while True:
            try:
                message = await self.layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if _is_timeout(exc) and not failures:
                    # An idle channel: redis-py's socket_timeout (5 s by default since
                    # redis-py 6) is the length of channels-redis's blocking receive, so
                    # a quiet receive can time out. Nothing was lost (a message taken
                    # at that very moment would show as a gap in the numbers).
                    continue
                # A channel layer that is briefly unreachable (Redis restarting) must
                # not end delivery for good: log, back off, and listen again.
                failures += 1
                logger.exception("Paintbrush: receiving from the channel layer failed")
                await asyncio.sleep(min(0.1 * 2**failures, _MAX_BACKOFF))
                await self._recover(channel)
                continue
            failures = 0
            group, text = message.get("group"), message.get("text")
            if not isinstance(group, str):
                continue
            self._note(group, message.get("origin"), message.get("seq"))
            if message.get("lost"):
                self._pending.append((group, None, 0))  # after the messages before it
            if isinstance(text, str):
                cost = len(self.members.get(group, ()))
                self._pending.append((group, text, cost))
                self._received_at.append(time.monotonic())
                self.backlog += cost
                if self.backlog > pb_settings.HUB_MAX_BACKLOG:
                    self._shed()
            self._wake.set()

    def _shed(self) -> None:
        """Writers elsewhere outrun this process's fan-out (writers in this process wait,
        see ``below``): rather than queue without end, the oldest pending messages give
        way to a resync of the subscriptions they were for, sent before anything newer."""
        lost: dict[str, None] = {}
        shed_before = self.dropped
        while self.backlog > pb_settings.HUB_MAX_BACKLOG // 2 and self._pending:
            group, text, cost = self._pending.popleft()
            lost[group] = None
            if text is not None:
                self.backlog -= cost
                self.dropped += 1
                if self._received_at:
                    self._received_at.popleft()
        for group in reversed(list(lost)):
            self._pending.appendleft((group, None, 0))
        metrics.shed(self.dropped - shed_before)
        logger.warning(
            "Paintbrush: fan-out backlog over %s deliveries; resyncing %s groups",
            pb_settings.HUB_MAX_BACKLOG,
            len(lost),
        )

    async def below(self, deliveries: int, timeout: float) -> None:
        """Wait until at most ``deliveries`` are pending, or ``timeout`` passes: a writer
        in this process waits here, so it cannot outrun the fan-out (backpressure)."""
        if self.backlog <= deliveries:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.backlog > deliveries and self._tasks:
            self._drained.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), remaining)

    def _note(self, group: str, origin: Any, seq: Any) -> None:
        """Take note of message ``seq`` from ``origin``. A number skipped is not yet a
        loss: one process's messages may arrive out of order (its writer threads race
        between numbering and sending, and channels-redis orders a channel by send
        time), so a missing number is lost only if it has not arrived ``_GAP_GRACE``
        seconds later. (The first message heard from an origin after joining cannot
        show a gap: there is nothing to compare it with.)"""
        heard = self._heard.get(group)
        if heard is None or not isinstance(origin, str) or not isinstance(seq, int):
            return
        state = heard.pop(origin, None)  # re-inserted last: the dict stays oldest-first
        if state is None:
            state = _Origin(seq)
        elif seq > state.highest:
            if seq > state.highest + 1:
                deadline = asyncio.get_running_loop().time() + _GAP_GRACE
                state.missing.update(dict.fromkeys(range(state.highest + 1, seq), deadline))
                self._expire_later(group)
            state.highest = seq
        else:
            state.missing.pop(seq, None)  # late, not lost
        heard[origin] = state
        if len(heard) > _MAX_ORIGINS:
            del heard[next(iter(heard))]

    def _expire_later(self, group: str) -> None:
        if group not in self._expiring:
            self._expiring[group] = asyncio.get_running_loop().call_later(_GAP_GRACE, self._expire, group)

    def _expire(self, group: str) -> None:
        """Numbers still missing past their grace are lost: the group resyncs."""
        self._expiring.pop(group, None)
        now = asyncio.get_running_loop().time()
        lost = pending = False
        for state in self._heard.get(group, {}).values():
            expired = [seq for seq, deadline in state.missing.items() if deadline <= now]
            for seq in expired:
                del state.missing[seq]
            self.gaps += len(expired)
            lost = lost or bool(expired)
            pending = pending or bool(state.missing)
        if lost:
            self._pending.append((group, None, 0))
            self._wake.set()
        if pending:
            self._expire_later(group)

    async def _recover(self, channel: str) -> None:
        """After a failed receive: join the groups again (a restarted Redis forgot
        them) and tell every member that messages may have been lost meanwhile."""
        try:
            for group in list(self.members):
                await self.layer.group_add(group, channel)
        except Exception:
            return  # still unreachable: the next receive fails and we come back
        for group in list(self.members):
            self._heard[group] = {}  # numbers seen before the outage prove nothing now
            self._lost(group, LAYER_DOWN)

    def _lost(self, group: str, reason: str) -> None:
        for membership in list(self.members.get(group, ())):
            try:
                membership.on_lost(reason)
            except Exception:
                logger.exception("Paintbrush: resyncing a member of %r failed", group)

    async def _renew(self, channel: str) -> None:
        """Channel layers expire group membership (``group_expiry``, a day by default),
        and a Redis restarted without persistence forgets it: a long-lived hub renews
        its groups every minute, whatever the traffic."""
        expiry = getattr(self.layer, "group_expiry", None)
        if not expiry:
            return
        while True:
            await asyncio.sleep(min(expiry / 3, _RENEW_SECONDS))
            for group in list(self.members):
                try:
                    await self.layer.group_add(group, channel)
                except Exception:
                    logger.exception("Paintbrush: renewing group %r failed", group)

    async def _fan_out(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                group, text, cost = self._pending.popleft()
                if text is None:
                    self._lost(group, MESSAGE_LOST)
                else:
                    received = self._received_at.popleft() if self._received_at else None
                    await self._deliver(group, text)
                    self.backlog -= cost
                    metrics.fanned_out(received, cost)  # once per message, not per member
                    self._drained.set()

    async def _deliver(self, group: str, text: str) -> None:
        for count, membership in enumerate(list(self.members.get(group, ())), 1):
            try:
                membership.on_message(text)
            except Exception:  # one broken socket must not stop the others
                logger.exception("Paintbrush: delivery to a member of %r failed", group)
            if count % _YIELD_EVERY == 0:
                # Handing a frame to a socket never waits, so without this a fan-out
                # to thousands of sockets would hold the event loop, and the writer's
                # own HTTP response would wait behind it.
                await asyncio.sleep(0)


def _is_timeout(exc: BaseException) -> bool:
    # redis.exceptions.TimeoutError is not the builtin one; channels-redis is optional.
    return any(cls.__name__ == "TimeoutError" for cls in type(exc).__mro__)


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, Hub]] = weakref.WeakKeyDictionary()


def hubs_of_this_loop() -> list[Hub]:
    """The hubs of the running event loop (none outside a server)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return []
    return list(_hubs.get(loop, {}).values())


def get_hub(layer: Any) -> Hub:
    """The hub of ``layer`` for the running event loop (one per process in a server;
    tests that run several loops get one each)."""
    loop = asyncio.get_running_loop()
    hubs = _hubs.setdefault(loop, {})
    hub = hubs.get(id(layer))
    if hub is None or hub.layer is not layer:
        hub = hubs[id(layer)] = Hub(layer)
    return hub
