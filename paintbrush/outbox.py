"""
A socket's unsent frames, bounded.

The process hub hands every event to every local socket without waiting for any of
them: ``Outbox.put_event`` sends at once when the socket is keeping up (no task, no
queue: the common case costs one call), and queues behind the frame in flight when the
server is still writing an earlier one (a client that reads slowly, or not at all,
makes the server's ``send`` wait on the TCP buffer).

Past ``PAINTBRUSH["MAX_PENDING_BYTES"]`` of queued events, the socket's pending events
are dropped and each subscription that lost one is owed a ``resync``, sent as soon as
the socket drains. If it does not drain within ``PAINTBRUSH["SLOW_SOCKET_SECONDS"]`` it
is closed with 1013 ("try again later"); the client reconnects with snapshots. So
one slow socket costs a bounded amount of memory and never delays the others.

    outbox = Outbox(wire_send, close)
    outbox.put_event("todos", text)     # droppable: a resync replaces it
    outbox.put_reply(text)              # opened, snapshot, error: never dropped
    outbox.put_document(text)           # only the newest pending document is kept
    outbox.put_document(patch, whole)   # a patch, or the whole if one is still pending

Replies are never dropped: the client asked for them, and their number is bounded by
the client's own requests (``SNAPSHOTS_PER_MINUTE``, ``MAX_ERRORS_PER_MINUTE``).
"""

from __future__ import annotations

import asyncio
import logging
import types
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, cast

from . import frames, metrics
from .frames import FELL_BEHIND
from .settings import pb_settings

logger = logging.getLogger("paintbrush")

__all__ = ["TRY_AGAIN_LATER", "Outbox"]

#: WebSocket close code 1013 "try again later": the socket did not drain in time.
TRY_AGAIN_LATER = 1013

_REPLY, _EVENT, _DOCUMENT = 0, 1, 2

#: The queue of every outbox that has never had to wait: always empty, never appended
#: to (a frame is queued only behind a send in flight, which makes the real queue).
_NO_QUEUE: deque[list[Any]] = deque(maxlen=0)


@types.coroutine
def _resume(coro: Coroutine[Any, Any, None], waiting: Any) -> Generator[Any, Any, None]:
    """Go on driving ``coro``, which was started by hand and is waiting on ``waiting``:
    exactly what a Task would have done with it from there."""
    while True:
        try:
            value = yield waiting
        except BaseException as exc:  # a Task throws cancellation (and errors) into us
            try:
                waiting = coro.throw(exc)
            except StopIteration:
                return
            continue
        try:
            waiting = coro.send(value)
        except StopIteration:
            return


class Outbox:
    #: Whose socket this is (``sockets.client_key``), for log lines.
    client = ""
    #: The resync frame of a subscription (by the name it is queued under) and reason;
    #: a consumer whose subscriptions are scoped tags it with their ``where``.
    resync_frame: Callable[[str, str], str] = staticmethod(frames.resync)
    #: Of ``dropped``, how many the metrics have counted.
    _dropped_counted = 0

    def __init__(
        self,
        send: Callable[[str], Coroutine[Any, Any, None]],
        close: Callable[[int], Coroutine[Any, Any, None]],
        resync_reason: str = FELL_BEHIND,
    ) -> None:
        self._send = send
        self._close = close
        self._reason = resync_reason
        #: Frames waiting behind the one in flight: [kind, subscription, text]. Made
        #: when a send first has to wait: most sockets never need one.
        self._queue: deque[list[Any]] = _NO_QUEUE
        self._pending_bytes = 0  # of queued events (the droppable part)
        self._reply_bytes = 0  # of queued replies
        self._task: asyncio.Task[None] | None = None
        #: Subscriptions owed a resync once the socket drains.
        self.owed: dict[str, None] = {}
        self._deadline: asyncio.TimerHandle | None = None
        self.closed = False
        #: Frames dropped, and resyncs sent, over the socket's life.
        self.dropped = 0
        self.resyncs = 0

    @property
    def pending_bytes(self) -> int:
        return self._pending_bytes

    def put_event(self, subscription: str, text: str) -> None:
        if self.closed:
            return
        if subscription in self.owed:
            self.dropped += 1  # its resync will bring the client this and more
            return
        if self._task is None:
            self._start(text)
            return
        self._queue.append([_EVENT, subscription, text])
        self._pending_bytes += len(text)
        if self._pending_bytes > pb_settings.MAX_PENDING_BYTES:
            self._overflow()

    def put_reply(self, text: str) -> None:
        if self.closed:
            return
        if self._task is None:
            self._start(text)
        else:
            self._queue.append([_REPLY, None, text])
            # Never dropped, but counted: a client that asks for snapshots and never
            # reads them is a slow socket too, and is closed after SLOW_SOCKET_SECONDS.
            self._reply_bytes += len(text)
            if self._reply_bytes + self._pending_bytes > pb_settings.MAX_PENDING_BYTES:
                self._arm_deadline()

    def put_document(self, text: str, whole: Callable[[], str] | None = None) -> None:
        """A role document, or a patch to the one before it (``whole`` then gives the
        whole document of the same revision). A newer document makes a pending older
        one worthless; a patch cannot apply to a document the client has not been
        sent, so a pending one is replaced by the whole new document."""
        if self.closed:
            return
        # Replace a pending document only if no reply is queued after it: "opened" of
        # a re-opened document must come before the document that answers it.
        for frame in reversed(self._queue):
            if frame[0] == _REPLY:
                break
            if frame[0] == _DOCUMENT:
                frame[2] = text if whole is None else whole()
                return
        if self._task is None:
            self._start(text)
        else:
            self._queue.append([_DOCUMENT, None, text])

    def resync(self, subscription: str, reason: str) -> None:
        """Tell the client to take a fresh snapshot of ``subscription``, after the
        frames already queued (they are older than the snapshot it will take)."""
        self.put_reply(self.resync_frame(subscription, reason))
        self.resyncs += 1
        metrics.resynced(subscription, reason, self.client)

    def forget(self, subscription: str) -> None:
        """``closedoc``: nothing more of ``subscription`` goes out, not even a resync."""
        self.owed.pop(subscription, None)
        if self._queue is _NO_QUEUE:
            return
        kept: deque[list[Any]] = deque()
        for frame in self._queue:
            if frame[1] == subscription:
                self._pending_bytes -= len(frame[2])
            else:
                kept.append(frame)
        self._queue = kept

    def close(self) -> None:
        """The socket is gone: drop everything and stop."""
        self.closed = True
        self._count_drops()
        self._queue.clear()
        self._pending_bytes = self._reply_bytes = 0
        self.owed.clear()
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if self._task is not None:
            self._task.cancel()
            self._task = None

    # -- sending -------------------------------------------------------------------------

    def _start(self, text: str) -> None:
        """Send ``text`` now, without a task: it completes at once unless the server
        must wait for the client. Only then does a task take over, and later frames
        queue behind it."""
        coro = self._send(text)
        try:
            waiting = coro.send(None)
        except StopIteration:
            return
        except (Exception, asyncio.CancelledError):  # the connection went away: the consumer cleans up
            coro.close()
            logger.debug("Paintbrush: sending to a socket failed", exc_info=True)
            return
        if self._queue is _NO_QUEUE:
            self._queue = deque()
        self._task = asyncio.get_running_loop().create_task(self._drain(coro, waiting))

    async def _send_one(self, text: str) -> None:
        try:
            await self._send(text)
        except (Exception, asyncio.CancelledError):  # the connection went away: the consumer cleans up
            logger.debug("Paintbrush: sending to a socket failed", exc_info=True)

    async def _drain(self, coro: Coroutine[Any, Any, None], waiting: Any) -> None:
        try:
            await cast("Awaitable[None]", _resume(coro, waiting))
        except Exception:
            logger.debug("Paintbrush: sending to a socket failed", exc_info=True)
        while not self.closed:
            if not self._queue:
                if not self.owed:
                    break
                # Drained: now the resyncs the dropped events were replaced by.
                owed, self.owed = self.owed, {}
                self._count_drops()
                for subscription in owed:
                    self.resync(subscription, self._reason)
                continue
            kind, _, text = self._queue.popleft()
            if kind == _EVENT:
                self._pending_bytes -= len(text)
            elif kind == _REPLY:
                self._reply_bytes -= len(text)
            await self._send_one(text)
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._task = None

    def _overflow(self) -> None:
        kept: deque[list[Any]] = deque()
        for frame in self._queue:
            if frame[0] == _EVENT:
                self.owed[frame[1]] = None
                self.dropped += 1
            else:
                kept.append(frame)
        self._queue = kept
        self._pending_bytes = 0
        self._count_drops()
        self._arm_deadline()

    def _arm_deadline(self) -> None:
        if self._deadline is None:
            loop = asyncio.get_running_loop()
            self._deadline = loop.call_later(pb_settings.SLOW_SOCKET_SECONDS, self._too_slow)

    def _too_slow(self) -> None:
        self._deadline = None
        if self._task is None or self.closed:
            return  # it drained meanwhile
        seconds = pb_settings.SLOW_SOCKET_SECONDS
        metrics.refused("slow_socket", self.client, code=TRY_AGAIN_LATER, detail=f"did not drain in {seconds}s")
        asyncio.get_running_loop().create_task(self._close(TRY_AGAIN_LATER))
        self.close()

    def _count_drops(self) -> None:
        """Hand the metrics the drops since last time: once per overflow, drain or
        close, never per event."""
        if self.dropped != self._dropped_counted:
            metrics.dropped(self.dropped - self._dropped_counted)
            self._dropped_counted = self.dropped
