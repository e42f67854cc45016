"""
The wire's vocabulary: every frame the server sends is built here, and the names and
reasons frames carry are defined here once (``docs/protocol.md``, sections 2 and 3).

    text = frames.opened("todos")                          # answers to a client
    text = frames.error("bad_json", "The frame is not JSON.", request=None)
    texts = frames.snapshot("todos", items, limit=512 * 1024)
    event = frames.update("todos", 7, {"done": True}, version=2)   # a delta, to encode once
    text = frames.resync("todos", frames.LAYER_DOWN)
    text = frames.document_text(frames.document_body("admin", [("orders", "[]")]), rev=1)

Frames are text, encoded once (``paintbrush.encoding``) and handed as they are to every
socket that gets them. Deltas are returned as dicts: ``paintbrush.events`` encodes each
once per write.

Between server processes travels a ``LayerMessage`` (``paintbrush.broadcast`` writes
it, ``paintbrush.hub`` reads it): message ``seq`` of a publishing process ``origin`` to
a ``group``, carrying a frame's text, or none for the marker that a message to the
group was lost.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from . import encoding

__all__ = [
    "DOC",
    "FELL_BEHIND",
    "LAYER_DOWN",
    "MESSAGE_LOST",
    "MESSAGE_TYPE",
    "PROBE_TYPE",
    "RATE_LIMITED",
    "REASON_CODES",
    "UNAVAILABLE",
    "LayerMessage",
    "closed",
    "create",
    "delete",
    "document_body",
    "document_patch",
    "document_text",
    "error",
    "opened",
    "resync",
    "snapshot",
    "update",
]

#: The reserved resource name of the role document (on ``/ws``; ``paintbrush.E002``).
DOC = "doc"

# -- resync reasons: the text a client reads, and the label the metrics count it by ----------

#: The channel layer was unreachable, or did not deliver this process's probe.
LAYER_DOWN = "the channel layer was unreachable; events may have been missed"
#: A numbered message between processes never arrived, or its sender said it was lost.
MESSAGE_LOST = "an event from another server process was lost"
#: The socket fell behind and its pending events were dropped (``paintbrush.outbox``).
FELL_BEHIND = "the socket fell behind and its pending events were dropped"
#: A snapshot asked for over ``SNAPSHOTS_PER_MINUTE``: the resync comes when it may ask.
RATE_LIMITED = "snapshot rate limit"
#: An ``opendoc`` answered ``unavailable``: the resync comes when it may try again.
UNAVAILABLE = "the server could not answer just now"

REASON_CODES = {
    LAYER_DOWN: "layer_down",
    MESSAGE_LOST: "message_lost",
    FELL_BEHIND: "slow_socket",
    RATE_LIMITED: "rate_limited",
    UNAVAILABLE: "unavailable",
}

# -- answers to a client ------------------------------------------------------------------------


def _scoped(frame: dict[str, Any], where: dict[str, Any] | None) -> dict[str, Any]:
    # Every frame of a scoped subscription carries its where (section 2b).
    if where is not None:
        frame["where"] = where
    return frame


def opened(resource: str, where: dict[str, Any] | None = None) -> str:
    return encoding.encode(_scoped({"type": "opened", "resource": resource}, where))


def closed(resource: str, where: dict[str, Any] | None = None, reason: str | None = None) -> str:
    frame = _scoped({"type": "closed", "resource": resource}, where)
    if reason is not None:
        frame["reason"] = reason
    return encoding.encode(frame)


def error(code: str, message: str, request: Any = None, **extra: Any) -> str:
    """``{"type": "error"}`` with the wire ``code`` (``paintbrush.exceptions``), and the
    offending request when it parsed."""
    frame: dict[str, Any] = {"type": "error", "error": code, "message": message}
    if request is not None:
        frame["request"] = request
    frame.update(extra)
    return encoding.encode(frame)


def resync(resource: str, reason: str, where: dict[str, Any] | None = None) -> str:
    return _resync(resource, reason, None if where is None else encoding.encode(where))


@functools.lru_cache(maxsize=256)
def _resync(resource: str, reason: str, where: str | None) -> str:
    # A lost group resyncs every socket of it: one encode serves them all.
    text = encoding.encode({"type": "resync", "resource": resource, "reason": reason})
    return text if where is None else f'{text[:-1]},"where":{where}}}'


def snapshot(resource: str, items: list[Any], limit: int, **tags: Any) -> list[str]:
    """The snapshot as frames of at most about ``limit`` bytes of JSON, every one but
    the last marked ``"more": true`` (a server limits the size of a message: Daphne to
    1 MiB by default). An item larger than ``limit`` travels alone. ``tags`` go on
    every frame (a scope's ``where``, a window's ``last`` and ``complete``)."""
    head = encoding.encode({"resource": resource, "action": "snapshot", **tags})[:-1] + ',"items":['
    frames: list[str] = []
    chunk: list[str] = []
    size = 0
    for item in items:
        text = encoding.encode(item)
        length = len(text.encode())
        if chunk and size + length > limit:
            frames.append(head + ",".join(chunk) + '],"more":true}')
            chunk, size = [], 0
        chunk.append(text)
        size += length + 1
    frames.append(head + ",".join(chunk) + "]}")
    return frames


# A document is pushed to many sockets and its parts are shared by many documents: it
# is spliced from the parts' JSON texts, each encoded once (paintbrush.documents.hub),
# into exactly the text ``encoding.encode`` would give the whole.
_DOC_HEAD = f'{{"type":"doc","resource":"{DOC}",'


def document_body(role: str, parts: Iterable[tuple[str | None, str]]) -> str:
    """The JSON text of ``{"role": role, <name>: <part>, ...}`` from each part's text;
    a part named None is an object spread into the document."""
    pieces = ['{"role":', encoding.encode(role)]
    for name, text in parts:
        if name is None:
            if text != "{}":
                pieces += [",", text[1:-1]]
        else:
            pieces += [",", encoding.encode(name), ":", text]
    pieces.append("}")
    return "".join(pieces)


def document_text(body: str, rev: int | None = None) -> str:
    """A role document, pushed whole (on ``/ws`` and ``/ws/doc`` alike), from its body's
    text; with ``rev`` for a client that takes patches (protocol section 2c)."""
    if rev is None:
        return f'{_DOC_HEAD}"doc":{body}}}'
    return f'{_DOC_HEAD}"doc":{body},"rev":{rev}}}'


def document_patch(fragments: Iterable[str], rev: int) -> str:
    """A JSON Patch from revision ``rev - 1`` to ``rev``, from operations already
    encoded (each fragment a comma-separated run of them)."""
    return f'{_DOC_HEAD}"patch":[{",".join(fragments)}],"rev":{rev}}}'


# -- deltas (dicts: encoded once per write by paintbrush.events) ---------------------------


def create(resource: str, item: dict[str, Any], where: dict[str, Any] | None = None) -> dict[str, Any]:
    return _scoped({"resource": resource, "action": "create", "item": item}, where)


def update(
    resource: str, id: Any, fields: dict[str, Any], version: int | None, where: dict[str, Any] | None = None
) -> dict[str, Any]:
    return _scoped({"resource": resource, "action": "update", "id": id, "fields": fields, "version": version}, where)


def delete(resource: str, id: Any, version: int | None, where: dict[str, Any] | None = None) -> dict[str, Any]:
    return _scoped({"resource": resource, "action": "delete", "id": id, "version": version}, where)


# -- between server processes ---------------------------------------------------------------

#: The channel-layer message type that carries a frame's text (or a lost marker) to the
#: hubs of a group.
MESSAGE_TYPE = "paintbrush.message"
#: The channel-layer message type of a hub's probe of its own channel.
PROBE_TYPE = "paintbrush.probe"


@dataclass(frozen=True, slots=True)
class LayerMessage:
    """Message ``seq`` of process ``origin`` to ``group``: ``text`` to hand to the
    group's sockets, or ``None`` for the marker that a message to it was lost."""

    group: str
    origin: str | None
    seq: int | None
    text: str | None

    def to_layer(self) -> dict[str, Any]:
        """As the channel layer carries it (a dict of msgpack-able values)."""
        message: dict[str, Any] = {"type": MESSAGE_TYPE, "group": self.group, "origin": self.origin, "seq": self.seq}
        if self.text is None:
            message["lost"] = True
        else:
            message["text"] = self.text
        return message

    @classmethod
    def from_layer(cls, message: dict[str, Any]) -> LayerMessage | None:
        """The message, or None if it is not one of ours (or is malformed)."""
        group, origin, seq, text = message.get("group"), message.get("origin"), message.get("seq"), message.get("text")
        if message.get("type") != MESSAGE_TYPE or not isinstance(group, str):
            return None
        if message.get("lost"):
            text = None
        elif not isinstance(text, str):
            return None
        return cls(group, origin if isinstance(origin, str) else None, seq if isinstance(seq, int) else None, text)
