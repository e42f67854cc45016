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

The hub also proves, every ``LAYER_PROBE_SECONDS``, that the channel layer still
delivers to it: it sends itself a probe through the layer and expects it back within the
same time. A connection that a NAT or load balancer dropped without a word (no FIN, no
RST) fails no call: it just delivers nothing. When a probe does not come back, the hub
listens on a new channel (over new connections), joins its groups again and resyncs
every member, rather than stay silently stale.

When the last local member of a group leaves, the hub leaves the group; when it has no
group left, its tasks end (nothing leaks past the last socket). Membership changes are
serialised per group, and no lock is ever held while waiting for a task to end: a
channel layer may swallow a cancellation (channels-redis can return a message from a
cancelled ``receive``), so a stopped task is left to notice for itself that its run is
over, instead of the hub waiting on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .frames import LAYER_DOWN, MESSAGE_LOST, PROBE_TYPE, LayerMessage
from .settings import pb_settings

logger = logging.getLogger("paintbrush")

__all__ = [
    "SOCKETS_USE_THE_HUB",
    "Hub",
    "HubObserver",
    "Membership",
    "all_hubs",
    "get_hub",
    "hubs_of_this_loop",
    "observers",
]

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


@dataclass
class _Origin:
    """What a hub heard of one publishing process in one group."""

    highest: int
    #: Numbers skipped so far, each with the loop time it counts as lost at.
    missing: dict[int, float] = field(default_factory=dict)


class HubObserver(Protocol):
    """What a hub reports, to whoever watches it (``paintbrush.metrics`` registers one
    in ``observers``): the hub does not know who listens."""

    def fanned_out(self, received: float | None, deliveries: int) -> None:
        """One message went to ``deliveries`` local members; it arrived at
        ``received`` (``time.monotonic()``, None when unknown)."""

    def shed(self, messages: int) -> None:
        """``messages`` pending messages were dropped for a resync (HUB_MAX_BACKLOG)."""


#: Called by every hub of the process, in order; plain calls that must not block.
observers: list[HubObserver] = []


@dataclass(eq=False, frozen=True)
class Membership:
    """One local member of one group, as ``Hub.join`` returns it."""

    group: str
    #: Called with the text of each message sent to the group; must not block.
    on_message: Callable[[str], None]
    #: Called, with a reason, when messages to the group may have been lost: the
    #: member must resync. Must not block.
    on_lost: Callable[[str], None]


@dataclass(eq=False)
class _Run:
    """One life of a hub's tasks: from its first member to its last. ``channel`` is
    where it listens; a failed probe moves it to a new one."""

    channel: str
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    receiver: asyncio.Task[None] | None = None
    #: Probes sent, and the highest number received back.
    probes_sent: int = 0
    probes_heard: int = 0
    probe_heard: asyncio.Event = field(default_factory=asyncio.Event)
    #: The groups must be joined again on ``channel`` before anything is promised.
    rejoin_owed: bool = False
    #: Channels the run listened on before: to leave its groups once it has joined them
    #: on the new one (else the layer would go on copying every message to them).
    abandoned: list[str] = field(default_factory=list)


class Hub:
    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.members: dict[str, dict[Membership, None]] = {}  # insertion-ordered sets
        self._run: _Run | None = None
        #: Serialises the layer's group_add/group_discard per group (a join must not
        #: overtake the leave before it), and only per group: a call stuck on one group
        #: never holds up another.
        self._group_locks: dict[str, list[Any]] = {}  # group -> [Lock, users]
        self._start_lock = asyncio.Lock()
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
        #: group -> publishing process -> number of the last message heard from it
        self._heard: dict[str, dict[str, _Origin]] = {}
        self._expiring: dict[str, asyncio.TimerHandle] = {}
        #: Messages lost to gaps or markers, over the hub's life.
        self.gaps = 0
        #: Probes that did not come back in time, over the hub's life.
        self.probes_failed = 0

    @property
    def channel(self) -> str | None:
        """The channel the hub listens on now (None while it has no member)."""
        return self._run.channel if self._run is not None else None

    @property
    def running(self) -> bool:
        return self._run is not None

    async def join(
        self,
        group: str,
        on_message: Callable[[str], None],
        on_lost: Callable[[str], None],
    ) -> Membership:
        membership = Membership(group, on_message, on_lost)
        async with self._locked(group):
            # Counted before any wait: the hub does not stop under a join in progress.
            local = self.members.setdefault(group, {})
            if not local:
                try:
                    run = await self._start()
                    self._heard[group] = {}
                    await self.layer.group_add(group, run.channel)
                except BaseException:
                    # Not joined: leave no empty group behind (it would keep the hub's
                    # tasks alive, and a later join would think the group joined).
                    if not self.members.get(group):
                        self.members.pop(group, None)
                        self._heard.pop(group, None)
                        if not self.members:
                            self._stop()
                    raise
            local[membership] = None
        return membership

    async def leave(self, membership: Membership) -> None:
        group = membership.group
        async with self._locked(group):
            local = self.members.get(group)
            if local is None or membership not in local:
                return
            del local[membership]
            if local:
                return
            del self.members[group]
            self._heard.pop(group, None)
            timer = self._expiring.pop(group, None)
            if timer is not None:
                timer.cancel()
            run = self._run
            if not self.members:
                self._stop()
            if run is None:
                return
            try:
                await self.layer.group_discard(group, run.channel)
            except Exception:
                # The layer is unreachable: the membership expires there by itself
                # (group_expiry), and the socket's clean-up must go on.
                logger.warning("Paintbrush: leaving group %r failed", group, exc_info=True)

    @contextlib.asynccontextmanager
    async def _locked(self, group: str) -> AsyncIterator[None]:
        entry = self._group_locks.get(group)
        if entry is None:
            entry = self._group_locks[group] = [asyncio.Lock(), 0]
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if not entry[1]:
                del self._group_locks[group]

    async def _start(self) -> _Run:
        """The running run, started if need be."""
        async with self._start_lock:  # new_channel() awaits: two first joins make one run
            if self._run is None:
                channel = await self.layer.new_channel("paintbrush.hub.")
                run = self._run = _Run(channel)
                loop = asyncio.get_running_loop()
                run.receiver = loop.create_task(self._receive(run, channel))
                run.tasks = [loop.create_task(self._fan_out()), loop.create_task(self._watch(run))]
            return self._run

    def _stop(self) -> None:
        """End the run. Its tasks are cancelled, not waited for: each notices by itself
        that its run is over (see ``_receive``), and nothing here can hang on one."""
        run, self._run = self._run, None
        if run is None:
            return
        for task in (run.receiver, *run.tasks):
            if task is not None:
                task.cancel()
        self._pending.clear()
        for timer in self._expiring.values():
            timer.cancel()
        self._expiring.clear()
        self._received_at.clear()
        self.backlog = 0
        self._drained.set()

    async def _receive(self, run: _Run, channel: str) -> None:
        failures = 0
        while self._run is run and run.channel == channel:
            try:
                message = await self.layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._run is not run or run.channel != channel:
                    return
                if _is_timeout(exc) and not failures:
                    # An idle channel: redis-py's socket_timeout may be the length of
                    # channels-redis's blocking receive, so a quiet receive can time
                    # out. Whether anything was lost meanwhile, the probe tells.
                    continue
                # A channel layer that is briefly unreachable (Redis restarting) must
                # not end delivery for good: log, back off, and listen again.
                failures += 1
                logger.warning("Paintbrush: receiving from the channel layer failed: %r", exc)
                await asyncio.sleep(min(0.1 * 2**failures, _MAX_BACKOFF))
                run.rejoin_owed = True
                await self._recover()
                continue
            if self._run is not run:
                # Stopped while receiving, and the layer swallowed the cancellation:
                # channels-redis can return a message from a cancelled receive. The run
                # is over and its groups have no member left: nothing to hand it to.
                return
            failures = 0
            self._take(run, message)

    def _take(self, run: _Run, message: dict[str, Any]) -> None:
        if message.get("type") == PROBE_TYPE:
            number = message.get("n")
            if isinstance(number, int) and number > run.probes_heard:
                run.probes_heard = number
                run.probe_heard.set()
            return
        received = LayerMessage.from_layer(message)
        if received is None:
            return
        group, text = received.group, received.text
        self._note(group, received.origin, received.seq)
        if text is None:
            self._pending.append((group, None, 0))  # the lost marker: after the messages before it
        else:
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
        for observer in observers:
            observer.shed(self.dropped - shed_before)
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
        while self.backlog > deliveries and self._run is not None:
            self._drained.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), remaining)

    def _note(self, group: str, origin: str | None, seq: int | None) -> None:
        """Take note of message ``seq`` from ``origin``. A number skipped is not yet a
        loss: one process's messages may arrive out of order (its writer threads race
        between numbering and sending, and channels-redis orders a channel by send
        time), so a missing number is lost only if it has not arrived ``_GAP_GRACE``
        seconds later. (The first message heard from an origin after joining cannot
        show a gap: there is nothing to compare it with.)"""
        heard = self._heard.get(group)
        if heard is None or origin is None or seq is None:
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

    async def _recover(self) -> bool:
        """Join every group again on the run's channel (a restarted Redis forgot them; a
        new channel never had them), then tell every member that messages may have been
        lost meanwhile. False while the layer still refuses: the watch tries again."""
        run = self._run
        if run is None:
            return False
        channel = run.channel
        try:
            for group in list(self.members):
                await asyncio.wait_for(self.layer.group_add(group, channel), pb_settings.LAYER_TIMEOUT_SECONDS)
        except Exception as exc:
            logger.warning("Paintbrush: joining the groups again failed (%r); trying again", exc)
            return False  # still unreachable: the watch (or the next receive) comes back
        if self._run is not run or run.channel != channel:
            return False
        run.rejoin_owed = False
        for group in list(self.members):
            self._heard[group] = {}  # numbers seen before the outage prove nothing now
            self._lost(group, LAYER_DOWN)
        abandoned, run.abandoned = run.abandoned, []
        for old in abandoned:
            for group in list(self.members):
                with contextlib.suppress(Exception):  # it expires there by itself otherwise
                    await asyncio.wait_for(self.layer.group_discard(group, old), pb_settings.LAYER_TIMEOUT_SECONDS)
        return True

    def _lost(self, group: str, reason: str) -> None:
        for membership in list(self.members.get(group, ())):
            try:
                membership.on_lost(reason)
            except Exception:
                logger.exception("Paintbrush: resyncing a member of %r failed", group)

    async def _watch(self, run: _Run) -> None:
        """The run's upkeep, for as long as it lasts:

        - Channel layers expire group membership (``group_expiry``, a day by default),
          and a Redis restarted without persistence forgets it: the groups are renewed
          every minute, whatever the traffic.
        - Every ``LAYER_PROBE_SECONDS`` a probe proves that the layer still delivers to
          this run's channel (see the module docstring); when it does not, the run moves
          to a new channel and every member resyncs.
        - A recovery that failed is tried again."""
        loop = asyncio.get_running_loop()
        expiry = getattr(self.layer, "group_expiry", None)
        renew_every = min(expiry / 3, _RENEW_SECONDS) if expiry else math.inf
        probe_every = pb_settings.LAYER_PROBE_SECONDS or math.inf
        next_renew = loop.time() + renew_every
        next_probe = loop.time() + probe_every
        while True:
            await asyncio.sleep(min(next_renew, next_probe, loop.time() + _MAX_BACKOFF) - loop.time())
            if run.rejoin_owed:
                await self._recover()
            now = loop.time()
            if now >= next_renew:
                next_renew = now + renew_every
                await self._renew(run)
            if now >= next_probe:
                if not await self._probe(run, pb_settings.LAYER_TIMEOUT_SECONDS):
                    await self._reconnect(run)
                next_probe = loop.time() + probe_every

    async def _renew(self, run: _Run) -> None:
        for group in list(self.members):
            try:
                await asyncio.wait_for(self.layer.group_add(group, run.channel), pb_settings.LAYER_TIMEOUT_SECONDS)
            except Exception as exc:
                logger.warning("Paintbrush: renewing group %r failed: %r", group, exc)

    async def _probe(self, run: _Run, timeout: float) -> bool:
        """Send the run's channel a probe through the layer; True once it is back within
        ``timeout`` seconds. Probes are numbered: a late one proves nothing now."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        run.probes_sent += 1
        number = run.probes_sent
        try:
            await asyncio.wait_for(self.layer.send(run.channel, {"type": PROBE_TYPE, "n": number}), timeout)
            while run.probes_heard < number:
                run.probe_heard.clear()
                await asyncio.wait_for(run.probe_heard.wait(), deadline - loop.time())
        except Exception:  # refused, or not back in time: not shown to deliver
            return False
        return True

    async def _reconnect(self, run: _Run) -> None:
        """The layer took the probe but did not deliver it (a connection dropped without
        a word), or refused it: listen on a new channel, over new connections, and
        resync every member once the groups are joined again."""
        self.probes_failed += 1
        timeout = pb_settings.LAYER_TIMEOUT_SECONDS
        logger.warning(
            "Paintbrush: the channel layer did not deliver this process's probe within %s s; "
            "listening on a new channel and resyncing %s groups",
            timeout,
            len(self.members),
        )
        if run.receiver is not None:
            # redis-py drops a connection whose command is cancelled: the next receive
            # opens a new one.
            run.receiver.cancel()
        if _is_pubsub(self.layer):
            # Its subscriptions share one connection per shard, which a silent drop
            # leaves dead. flush() closes them; it deletes nothing (pub/sub stores
            # nothing), and the groups are joined again below.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.layer.flush(), timeout)
        try:
            channel = await asyncio.wait_for(self.layer.new_channel("paintbrush.hub."), timeout)
        except Exception as exc:
            logger.warning("Paintbrush: opening a new hub channel failed (%r); trying again", exc)
            return  # the next probe fails too and comes back here
        if self._run is not run:
            return
        if not _is_pubsub(self.layer):  # flush() forgot the pub/sub layer's groups already
            run.abandoned.append(run.channel)
        run.channel = channel
        run.receiver = asyncio.get_running_loop().create_task(self._receive(run, channel))
        run.rejoin_owed = True
        await self._recover()

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
                    for observer in observers:  # once per message, not per member
                        observer.fanned_out(received, cost)
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


def _is_pubsub(layer: Any) -> bool:
    # channels-redis is optional: recognised by name, not imported.
    return type(layer).__module__ == "channels_redis.pubsub"


def _is_timeout(exc: BaseException) -> bool:
    # redis.exceptions.TimeoutError is not the builtin one; channels-redis is optional.
    return any(cls.__name__ == "TimeoutError" for cls in type(exc).__mro__)


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, Hub]] = weakref.WeakKeyDictionary()


def all_hubs() -> list[Hub]:
    """Every hub of this process, whatever its event loop (a view runs in a thread)."""
    for _ in range(3):
        try:
            return [hub for hubs in list(_hubs.values()) for hub in list(hubs.values())]
        except RuntimeError:  # a loop's hubs changed while we read them: read again
            continue
    return []


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
