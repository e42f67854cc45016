"""
Paintbrush's settings: one ``PAINTBRUSH`` dict in the Django settings module.

    PAINTBRUSH = {
        "MAX_FRAME_BYTES": 64 * 1024,
        "DOC_COALESCE_SECONDS": 0.05,
    }

Read them through ``pb_settings.MAX_FRAME_BYTES``: values are looked up lazily and the
cache is dropped on Django's ``setting_changed``, so ``override_settings`` works.
Values are validated by the system checks in ``paintbrush.checks``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed

DEFAULTS: dict[str, Any] = {
    # Largest text frame a socket may send, in bytes; larger ones get ``too_large``.
    "MAX_FRAME_BYTES": 64 * 1024,
    # How deep a socket frame or REST body may nest arrays and objects: far more than
    # any resource needs, far below the ~1,000 levels where Python's parser runs out of
    # stack. Deeper JSON is answered bad_json (socket) or 400 (REST).
    "MAX_JSON_DEPTH": 32,
    # Snapshots are sent in frames of about this many bytes of JSON at most, each but
    # the last marked "more": servers limit a message's size (Daphne: 1 MiB).
    "SNAPSHOT_FRAME_BYTES": 512 * 1024,
    # Events queued for a socket that is not keeping up, in bytes; past it they are
    # dropped and the socket's subscriptions get "resync" once it drains.
    "MAX_PENDING_BYTES": 1024 * 1024,
    # A socket that does not drain within this many seconds of passing
    # MAX_PENDING_BYTES is closed with 1013 ("try again later").
    "SLOW_SOCKET_SECONDS": 30.0,
    # Sockets one client (a signed-in user, else an address) may hold open in one
    # server process; more are closed with 4029.
    "MAX_SOCKETS_PER_CLIENT": 50,
    # The largest window a client may ask for ("last": N on a socket, ?last=N over REST).
    "MAX_WINDOW": 1000,
    # Resources one socket may have open at once; more are answered limit_exceeded.
    "MAX_SUBSCRIPTIONS_PER_SOCKET": 64,
    # Snapshots one socket may ask for in a minute; more are answered rate_limited
    # (and an open subscription gets resync once it may ask again).
    "SNAPSHOTS_PER_MINUTE": 60,
    # Deliveries (a message times the local sockets it goes to) a server process may
    # have pending before a writer in it waits for its fan-out to catch up: writers are
    # slowed rather than the queue, and the latency, allowed to grow.
    "WRITER_MAX_BACKLOG": 10_000,
    # The longest a writer waits so, in seconds.
    "WRITER_WAIT_SECONDS": 5.0,
    # Deliveries a process's hub may hold pending at all (writers in other processes
    # are not slowed by it): past it, the oldest pending messages are dropped and their
    # subscriptions resync.
    "HUB_MAX_BACKLOG": 200_000,
    # A socket sending more bad frames than this within a minute is closed (1008):
    # errors are answered, not fatal, but answering a flood is not free.
    "MAX_ERRORS_PER_MINUTE": 120,
    # Retry-After, in seconds, of the JSON 503 a REST request gets while the database
    # cannot be reached (refused or lost connections; paintbrush.handlers), and the
    # retry_after of an opendoc answered "unavailable" then.
    "DATABASE_RETRY_AFTER_SECONDS": 5,
    # Changes to role documents committed within this window are pushed as one.
    "DOC_COALESCE_SECONDS": 0.05,
    # Every this many seconds each server process's hub proves that the channel layer
    # still delivers to it, by a probe through the layer to itself: a connection that a
    # NAT or load balancer dropped silently fails no call, it only delivers nothing.
    # When the probe is not back within LAYER_TIMEOUT_SECONDS, the hub listens anew and
    # its subscriptions resync. 0 turns probing off.
    "LAYER_PROBE_SECONDS": 5.0,
    # The longest one channel-layer call (a writer's send, a probe, a group join on
    # recovery) may take before it counts as failed: a send that fails so is owed a
    # "lost" marker, as when Redis refuses it. Bounds a write's wait on a dead connection.
    "LAYER_TIMEOUT_SECONDS": 5.0,
    # Channel layer alias used to carry events between processes.
    "CHANNEL_LAYER": "default",
    # Modules named so in each installed app are imported at start-up to register resources.
    "AUTODISCOVER_MODULE": "live",
    # Client addresses (or networks, "10.0.0.0/8") that may read paintbrush.metrics's
    # views without signing in as staff.
    "METRICS_ALLOWED_ADDRESSES": ["127.0.0.1", "::1"],
}


class PaintbrushSettings:
    """Attribute access to ``settings.PAINTBRUSH`` with ``DEFAULTS`` filled in."""

    def __init__(self, defaults: dict[str, Any]) -> None:
        self._defaults = defaults
        self._cached: set[str] = set()

    @property
    def user_settings(self) -> dict[str, Any]:
        value = getattr(settings, "PAINTBRUSH", {})
        return value if isinstance(value, dict) else {}

    def __getattr__(self, name: str) -> Any:
        if name not in self._defaults:
            raise AttributeError(f"Invalid Paintbrush setting: {name!r}")
        value = self.user_settings.get(name, self._defaults[name])
        self._cached.add(name)
        setattr(self, name, value)
        return value

    def reload(self) -> None:
        for name in self._cached:
            delattr(self, name)
        self._cached.clear()


pb_settings = PaintbrushSettings(DEFAULTS)


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting == "PAINTBRUSH":
        pb_settings.reload()


setting_changed.connect(_reload, dispatch_uid="paintbrush.settings.reload")
