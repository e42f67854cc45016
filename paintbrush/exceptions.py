"""
The failures a socket can be told about, one class each.

Every class carries the wire ``code`` of the protocol's error table (``docs/protocol.md``,
section 2); the consumer turns any
``SocketError`` into ``{"type": "error", "error": code, "message": str(exc)}`` in one
place (``LiveConsumer.send_error``) and keeps the socket open.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BadJSON",
    "BadMessage",
    "BadWhere",
    "Forbidden",
    "LimitExceeded",
    "RateLimited",
    "SocketError",
    "TooLarge",
    "Unavailable",
    "UnknownAction",
    "UnknownResource",
]


class SocketError(Exception):
    """Base class: a client message that is answered with an error frame."""

    code = "error"
    #: More keys for the error frame.
    extra: dict[str, Any] = {}


class BadJSON(SocketError):
    """The frame is not JSON text (binary frames included)."""

    code = "bad_json"


class BadMessage(SocketError):
    """The frame is JSON but not an object with a string ``action`` and ``resource``."""

    code = "bad_message"


class BadWhere(SocketError):
    """A ``where`` or window the resource does not accept: a field it does not declare,
    a value of the wrong type, no scope where one is required, a ``last`` out of range
    (``docs/protocol.md``, section 2b)."""

    code = "bad_where"


class UnknownAction(SocketError):
    """The ``action`` is neither ``opendoc`` nor ``closedoc``."""

    code = "unknown_action"


class UnknownResource(SocketError):
    """No live resource of that name (REST-only resources included)."""

    code = "unknown_resource"


class Forbidden(SocketError):
    """The socket's user may not read that resource."""

    code = "forbidden"


class TooLarge(SocketError):
    """The frame is larger than ``PAINTBRUSH["MAX_FRAME_BYTES"]``."""

    code = "too_large"


class LimitExceeded(SocketError):
    """The socket holds ``PAINTBRUSH["MAX_SUBSCRIPTIONS_PER_SOCKET"]`` subscriptions."""

    code = "limit_exceeded"


class RateLimited(SocketError):
    """More than ``PAINTBRUSH["SNAPSHOTS_PER_MINUTE"]`` snapshots asked for on one socket;
    the frame says when to try again (``retry_after``, seconds)."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.extra = {"retry_after": retry_after}


class Unavailable(SocketError):
    """The database (or the channel layer) failed while answering: that request alone
    is answered, the socket stays open. The frame says when to try again
    (``retry_after``, seconds); an open subscription is sent ``resync`` then."""

    code = "unavailable"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.extra = {"retry_after": retry_after}
