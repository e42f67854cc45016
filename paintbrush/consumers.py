"""
Where a socket subscribes: the multiplexed ``/ws`` consumer of the wire protocol
(``docs/protocol.md``, section 2).

    {"action": "opendoc",  "resource": "todos", "snapshot": true}
    {"action": "closedoc", "resource": "todos"}

``opendoc`` asks the resource's DRF viewset whether the socket's user may list it
(``paintbrush.permissions``), joins the event groups of that user's keys
(``Resource.subscription_keys``) through the process hub, answers ``opened``, then (if
asked) the snapshot (``paintbrush.snapshots``: read once for every socket that asks
for the same rows at the same moment, split over frames of at most
``SNAPSHOT_FRAME_BYTES``), and only then the events that arrived meanwhile, so a client
never sees an event before its snapshot. Every failure is answered with an error frame and the socket stays open. The
reserved resource ``doc`` is the user's role document (``paintbrush.documents``).

When the hub cannot show that a subscription received every event (the channel layer
was unreachable, a message between processes was lost) or the socket's outbox had to
drop events, the subscription gets ``{"type": "resync"}`` and the client takes a fresh
snapshot.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar

from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser

from . import encoding, frames, metrics, scopes, snapshots
from .access import AccessWatchMixin
from .documents.consumers import DocumentSocketMixin
from .exceptions import (
    BadJSON,
    BadMessage,
    BadWhere,
    Forbidden,
    LimitExceeded,
    RateLimited,
    SocketError,
    TooLarge,
    Unavailable,
    UnknownAction,
    UnknownResource,
)
from .frames import DOC
from .groups import event_group
from .handlers import DATABASE_OUTAGES
from .hub import Membership
from .outbox import TRY_AGAIN_LATER
from .resources import Resource, site
from .settings import pb_settings
from .sockets import POLICY_VIOLATION, PaintbrushSocket
from .windows import parse_last

logger = logging.getLogger("paintbrush")

__all__ = ["LiveConsumer"]


#: The window of the per-minute limits, in seconds.
_RATE_WINDOW = 60.0

#: Failures that answer one request ``unavailable`` rather than close the socket: the
#: database unreachable or its connection lost (not a bug: IntegrityError and the like
#: still close the socket, loudly).
_UNAVAILABLE = DATABASE_OUTAGES

#: Error codes that refuse a client something (logged and counted); the other errors
#: answer mistakes.
_REFUSALS = frozenset({Forbidden.code, LimitExceeded.code, RateLimited.code, TooLarge.code, Unavailable.code})


@dataclass(eq=False)
class _Subscription:
    resource: str
    #: Its scope (``paintbrush.scopes``), None for the whole resource.
    where: dict[str, Any] | None = None
    memberships: list[Membership] = field(default_factory=list)
    #: Events held until ``opened`` (and the snapshot) went out; None once live.
    held: list[str] | None = field(default_factory=list)
    #: A resync is due (or was sent and not yet answered): one is enough.
    resync: str | None = None

    @property
    def key(self) -> str:
        """Its name on this socket: the resource, and its ``where`` if it has one."""
        return _key(self.resource, self.where)


def _key(resource: str, where: dict[str, Any] | None) -> str:
    return resource if where is None else f"{resource}?{scopes.canonical(where)}"


class LiveConsumer(AccessWatchMixin, DocumentSocketMixin, PaintbrushSocket):
    """One socket per page; any number of resource subscriptions on it."""

    #: Whitelist: a client-supplied action never names a method; only these do.
    #: (Class-level, like the lists below until first used: an idle socket should cost
    #: little memory, and thousands of them are the common case.)
    actions: ClassVar[dict[str, str]] = {"opendoc": "opendoc", "closedoc": "closedoc"}
    #: Resources owed a resync after an ``unavailable`` answer.
    _retries: dict[str, asyncio.TimerHandle] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.subscriptions: dict[str, _Subscription] = {}
        self._rechecks: set[asyncio.Task[None]] = set()
        self._errors: list[float] = []  # when recent bad frames came
        self._snapshots: list[float] = []  # when recent snapshots were taken

    async def connect(self) -> None:
        if not await self.admit():
            return
        self.outbox.resync_frame = self._resync_frame  # resyncs tagged with their scope
        try:
            allowed = await self.watch_access()
        except Exception:
            logger.exception("Paintbrush: setting up a socket failed; refusing it")
            allowed = False
        if not allowed:
            await self.refuse("access", detail="the user is gone or inactive, or the channel layer is down")
            return
        await self.accept()

    async def released(self) -> None:
        # The memberships themselves are left by the base class.
        for handle in (self._retries or {}).values():
            handle.cancel()
        for name in list(self.subscriptions):
            await self._unsubscribe(name)
        await self.detach_document()

    # -- incoming frames ----------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        message: Any = None
        try:
            message = self.parse(text_data, bytes_data)
            if not isinstance(message, dict):
                raise BadMessage(f"A message is a JSON object, not {type(message).__name__}.")
            action = message.get("action")
            if not isinstance(action, str):
                raise BadMessage('A message is a JSON object with a string "action".')
            method = self.actions.get(action)
            if method is None:
                raise UnknownAction(f"Unknown action {action!r}; expected one of {sorted(self.actions)}.")
            handler: Callable[[dict[str, Any]], Awaitable[None]] = getattr(self, method)
            await handler(message)
        except SocketError as exc:
            await self.send_error(exc, message)
        except Exception:
            # Not an outage (those are answered ``unavailable``) but a fault nobody
            # foresaw: the socket cannot promise a consistent view, so it closes and
            # the client reconnects with fresh snapshots. The close releases whatever
            # the failed action had taken.
            logger.exception("Paintbrush: %r failed; closing the socket", message)
            self.close_later(TRY_AGAIN_LATER)

    def parse(self, text_data: str | None, bytes_data: bytes | None) -> Any:
        limit = pb_settings.MAX_FRAME_BYTES
        size = len(bytes_data) if bytes_data is not None else len((text_data or "").encode())
        if size > limit:
            raise TooLarge(f"Frame of {size} bytes is over the limit of {limit} bytes.")
        if text_data is None:
            raise BadJSON("Binary frames are not accepted; send JSON text.")
        try:
            return encoding.decode(text_data, max_depth=pb_settings.MAX_JSON_DEPTH)
        except ValueError as exc:
            raise BadJSON(f"The frame is not valid JSON: {exc}.") from exc

    def resource_name(self, message: dict[str, Any]) -> str:
        name = message.get("resource")
        if not isinstance(name, str):
            raise BadMessage(f'"{message.get("action")}" needs a string "resource".')
        return name

    def resource_of(self, message: dict[str, Any]) -> Resource:
        name = self.resource_name(message)
        resource = site.get(name)
        if resource is None or not resource.live:
            raise UnknownResource(f"No live resource named {name!r}.")
        return resource

    async def send_error(self, exc: SocketError, request: Any) -> None:
        if self.closing:
            return
        if not _within(self._errors, pb_settings.MAX_ERRORS_PER_MINUTE):
            self.log_refusal("flood", code=POLICY_VIOLATION)
            await self.close(code=POLICY_VIOLATION)  # the client floods us
            return
        if exc.code in _REFUSALS:
            resource = request.get("resource") if isinstance(request, dict) else None
            fields = {"resource": resource} if isinstance(resource, str) else {}
            self.log_refusal(exc.code, **fields, detail=str(exc))
        self.outbox.put_reply(frames.error(exc.code, str(exc), request, **exc.extra))

    # -- actions --------------------------------------------------------------------

    async def opendoc(self, message: dict[str, Any]) -> None:
        if self.resource_name(message) == DOC:  # the role document: paintbrush.documents
            return await self.open_document(patches=message.get("patch") is True)
        resource = self.resource_of(message)
        where = scopes.check_where(resource, message.get("where"))
        snapshot = message.get("snapshot") is True
        last = None
        if message.get("last") is not None:
            try:
                last = parse_last(message["last"])
            except ValueError as exc:
                raise BadWhere(str(exc)) from exc
        key = _key(resource.name, where)
        subscription = self.subscriptions.get(key)
        if subscription is None and len(self.subscriptions) >= pb_settings.MAX_SUBSCRIPTIONS_PER_SOCKET:
            raise LimitExceeded(
                f"A socket holds at most {pb_settings.MAX_SUBSCRIPTIONS_PER_SOCKET} subscriptions; close one first."
            )
        if snapshot and not _within(self._snapshots, pb_settings.SNAPSHOTS_PER_MINUTE):
            retry = _RATE_WINDOW - (time.monotonic() - self._snapshots[0])
            if subscription is not None:
                # Still owed a consistent view: ask the client again once it may.
                asyncio.get_running_loop().call_later(retry, self._resync_now, subscription, frames.RATE_LIMITED)
            limit = pb_settings.SNAPSHOTS_PER_MINUTE
            raise RateLimited(f"At most {limit} snapshots a minute per socket.", retry_after=round(retry, 1))
        # Without AuthMiddlewareStack there is no user: treat the socket as signed out.
        user = self.scope.get("user") or AnonymousUser()
        try:
            view, snapshot_key = await database_sync_to_async(snapshots.listing)(resource, user, where, last)
        except _UNAVAILABLE as exc:
            raise self._unavailable(resource.name, where, exc) from exc
        subscription = self.subscriptions.get(key)
        if subscription is None:
            try:
                # Off the event loop, like every hook: it may use the ORM.
                user_keys = await database_sync_to_async(_subscription_keys)(resource, user)
            except _UNAVAILABLE as exc:
                raise self._unavailable(resource.name, where, exc) from exc
            subscription = self.subscriptions[key] = _Subscription(resource.name, where)
            metrics.SUBSCRIPTIONS.labels(resource.name).inc()
            try:
                for user_key in user_keys:
                    group_key = user_key if where is None else f"{user_key}.{scopes.token(where)}"
                    membership = await self.join(
                        event_group(resource.name, group_key),
                        partial(self._on_event, subscription),
                        partial(self._on_lost, subscription),
                    )
                    subscription.memberships.append(membership)
            except Exception as exc:  # the channel layer: nothing of this subscription stays
                await self._unsubscribe(key)
                raise self._unavailable(resource.name, where, exc) from exc
        elif subscription.held is None:
            subscription.held = []
        if snapshot:
            subscription.resync = None  # this snapshot answers any resync so far
        self.outbox.put_reply(frames.opened(resource.name, where))
        try:
            if snapshot:
                # Read after joining the groups: a change committed meanwhile is either in
                # the snapshot, or held and sent after it (clients apply both by version).
                for frame in await snapshots.frames_for(resource.name, view, snapshot_key, where, last):
                    self.outbox.put_reply(frame)
        except _UNAVAILABLE as exc:
            # Subscribed, without its snapshot: events go on, and the snapshot is owed
            # (the resync that _unavailable schedules).
            raise self._unavailable(resource.name, where, exc) from exc
        finally:
            self._release(subscription)

    def _unavailable(self, resource: str, where: dict[str, Any] | None, exc: Exception) -> Unavailable:
        """Answer one request that the database or the channel layer failed, and send
        its subscription ``resync`` once the client may try again: the socket and its
        other subscriptions go on."""
        retry = float(pb_settings.DATABASE_RETRY_AFTER_SECONDS)
        logger.warning("Paintbrush: opendoc %r failed (%r); answered unavailable", resource, exc)
        key = _key(resource, where)
        handle = asyncio.get_running_loop().call_later(retry, self._retry_now, resource, where)
        if self._retries is None:
            self._retries = {}
        previous = self._retries.pop(key, None)
        if previous is not None:
            previous.cancel()
        self._retries[key] = handle
        return Unavailable(f"The server could not open {resource!r} just now; try again later.", retry_after=retry)

    def _retry_now(self, resource: str, where: dict[str, Any] | None) -> None:
        key = _key(resource, where)
        if self._retries is not None:
            self._retries.pop(key, None)
        subscription = self.subscriptions.get(key)
        if subscription is not None:
            self._resync_now(subscription, frames.UNAVAILABLE)
        elif not self.closing:
            # Not subscribed (the failure came first): the same frame asks the client to
            # open it again, as it answers any resync.
            self.outbox.put_reply(frames.resync(resource, frames.UNAVAILABLE, where))

    async def closedoc(self, message: dict[str, Any]) -> None:
        if self.resource_name(message) == DOC:
            return await self.close_document()
        resource = self.resource_of(message)
        where = message.get("where")
        key = _key(resource.name, where if isinstance(where, dict) else None)
        handle = self._retries.pop(key, None) if self._retries is not None else None
        if handle is not None:
            handle.cancel()
        await self._unsubscribe(key)
        self.outbox.put_reply(frames.closed(resource.name, where if isinstance(where, dict) else None))

    def _release(self, subscription: _Subscription) -> None:
        held, subscription.held = subscription.held, None
        for text in held or ():
            self.outbox.put_event(subscription.key, text)

    async def _unsubscribe(self, key: str) -> None:
        subscription = self.subscriptions.pop(key, None)
        if subscription is None:
            return
        metrics.SUBSCRIPTIONS.labels(subscription.resource).dec()
        outbox = self._outbox()
        if outbox is not None:
            outbox.forget(key)
        for membership in subscription.memberships:
            await self.leave(membership)

    def _resync_frame(self, key: str, reason: str) -> str:
        """The outbox's resync frame for subscription ``key``, tagged with its scope."""
        subscription = self.subscriptions.get(key)
        if subscription is None:
            return frames.resync(key, reason)
        return frames.resync(subscription.resource, reason, subscription.where)

    # -- access to scopes -------------------------------------------------------------------

    def scopes_changed(self) -> None:
        """The user's access to scopes may have changed (``paintbrush.access.watch``):
        hold the scoped subscriptions' events until each scope is checked again, then
        release them, or close the subscription (``closed``, reason ``forbidden``)
        without a frame more of it."""
        scoped = [s for s in self.subscriptions.values() if s.where is not None]
        if not scoped:
            return
        for subscription in scoped:
            if subscription.held is None:
                subscription.held = []
        task = asyncio.get_running_loop().create_task(self._recheck(scoped))
        self._rechecks.add(task)
        task.add_done_callback(self._rechecks.discard)

    async def _recheck(self, scoped: list[_Subscription]) -> None:
        user = self.scope.get("user") or AnonymousUser()
        try:
            readable = await database_sync_to_async(_readable)(scoped, user)
        except Exception:
            logger.exception("Paintbrush: checking scopes again failed; closing the socket")
            self.close_later(TRY_AGAIN_LATER)  # the client reconnects under the rules of then
            return
        for subscription, ok in zip(scoped, readable, strict=True):
            if self.subscriptions.get(subscription.key) is not subscription:
                continue  # closed meanwhile
            if ok:
                self._release(subscription)
                continue
            subscription.held = None  # its held events are not for this user any more
            await self._unsubscribe(subscription.key)
            self.outbox.put_reply(frames.closed(subscription.resource, subscription.where, reason="forbidden"))

    # -- from the hub (plain calls: they must not wait) ------------------------------------

    def _on_event(self, subscription: _Subscription, text: str) -> None:
        if self.subscriptions.get(subscription.key) is not subscription:
            return  # closed meanwhile
        if subscription.held is not None:
            subscription.held.append(text)
        else:
            self.outbox.put_event(subscription.key, text)

    def _on_lost(self, subscription: _Subscription, reason: str) -> None:
        if self.subscriptions.get(subscription.key) is not subscription or subscription.resync:
            return  # closed, or a resync already on its way
        self._resync_now(subscription, reason)

    def _resync_now(self, subscription: _Subscription, reason: str) -> None:
        if self.subscriptions.get(subscription.key) is not subscription:
            return
        subscription.resync = reason
        self.outbox.resync(subscription.key, reason)


def _subscription_keys(resource: Resource, user: Any) -> list[str]:
    """``resource.subscription_keys(user)``, in the database thread; a hook that raises
    is answered ``forbidden`` naming it, and logged (never a silent socket)."""
    try:
        return list(resource.subscription_keys(user))
    except DATABASE_OUTAGES:
        raise
    except Exception:
        hook = f"{type(resource).__name__}.subscription_keys"
        logger.exception("Paintbrush: %s raised; the subscription is refused", hook)
        raise Forbidden(f"The server could not decide what you may read ({hook} failed).") from None


def _readable(scoped: list[_Subscription], user: Any) -> list[bool]:
    """Whether ``user`` may still read each scope (in the database thread)."""
    answers = []
    for subscription in scoped:
        resource = site.get(subscription.resource)
        assert subscription.where is not None
        answers.append(resource is not None and bool(resource.can_read_scope(user, subscription.where)))
    return answers


def _within(times: list[float], per_minute: int) -> bool:
    """Count one more occurrence now; False when that is over ``per_minute``."""
    now = time.monotonic()
    stale = 0
    while stale < len(times) and now - times[stale] >= _RATE_WINDOW:
        stale += 1
    del times[:stale]
    if len(times) >= per_minute:
        return False
    times.append(now)
    return True
