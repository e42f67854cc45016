"""
The JSON of the wire, both ways and for both patterns: events, snapshots, documents and
error frames are encoded here, and client frames and REST bodies are decoded here.

    text = encode({"type": "opened", "resource": "todos"})   # compact, once per message

``encode`` is the only JSON encoder on the event path: the same text is handed to every
group and every socket (tests count its calls to prove it).

``decode`` is the only JSON decoder for what clients send (socket frames, REST bodies):

    message = decode(text_data, max_depth=pb_settings.MAX_JSON_DEPTH)

It is ``json.loads`` made safe for hostile input: a depth limit checked before parsing
(the stdlib parser recurses once per level, so ~1,000 nested brackets, 2 KB of text,
end in ``RecursionError``), no ``NaN``/``Infinity`` (the stdlib accepts them, but
they are not JSON, and echoing them back produces text no client can parse), and no
unpaired surrogate (``"\\ud800"``: the stdlib returns it as a lone UTF-16 half, which
no UTF-8 text can hold, so an error frame echoing it could never be sent).
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any, NoReturn

from rest_framework.utils.encoders import JSONEncoder

__all__ = ["JSONDecodeLimitError", "decode", "encode", "nesting_depth"]


def encode(message: Any) -> str:
    """Compact JSON text; DRF's encoder covers what a serializer may leave
    (decimals, dates, UUIDs)."""
    return json.dumps(message, cls=JSONEncoder, separators=(",", ":"), ensure_ascii=False)


class JSONDecodeLimitError(ValueError):
    """JSON that ``decode`` refuses although ``json.loads`` would take it (or crash on it):
    nested deeper than the limit, holding ``NaN``/``Infinity``/``-Infinity``, or a string
    with an unpaired surrogate.

    A ``ValueError``, like the malformed-JSON ``json.JSONDecodeError``, so one
    ``except ValueError`` covers every bad input; the message names the rule broken."""


# A string literal, from its opening quote to its closing one; an unterminated literal
# runs to the end of the text. It therefore matches wherever it starts, and the
# possessive quantifiers never backtrack: linear time, even on hostile text such as
# thousands of unterminated quotes or a trailing lone backslash.
_STRING = re.compile(r'"(?:[^"\\]++|\\[\s\S])*+(?:"|\\?\Z)')
_NOT_BRACKET = re.compile(r"[^\[\]{}]++")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def nesting_depth(text: str) -> int:
    """How many arrays/objects of ``text`` are open at once at the deepest point, found
    without parsing (so without recursion): brackets inside string literals do not count.

    Exact for valid JSON. On malformed text it is exact up to the first error, which is as
    far as ``json.loads`` gets, so it is a safe bound for the parser's recursion."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    # Running sum of +1/-1 and its maximum, iterated in C (no Python loop per bracket).
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _reject_constant(token: str) -> NoReturn:
    raise JSONDecodeLimitError(f"{token} is not valid JSON")


def _finite_float(token: str) -> float:
    # 1e999 parses to inf, which no JSON text can carry back (encode would write
    # Infinity): refused like the Infinity token.
    value = float(token)
    if math.isinf(value):
        raise JSONDecodeLimitError(f"{token} is too large a number for JSON")
    return value


# One decoder, built once: ``json.loads(text, parse_constant=...)`` builds a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)

# An escape of a UTF-16 surrogate half, \ud800 to \udfff, in either case. Paired ones
# (\ud83d\ude00, an escaped emoji) are what clients with ASCII-only JSON send; only an
# unpaired one is refused. Whether one is paired is read from the parsed value, not from
# the text: whether "\ud800" is an escape at all depends on the backslashes before it.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
# The parsed value, back to text: it holds an unpaired surrogate iff that text cannot be
# encoded as UTF-8 (the parser joins pairs into one character).
_REENCODER = json.JSONEncoder(ensure_ascii=False, check_circular=False, separators=(",", ":"))


def _surrogate(error: UnicodeEncodeError) -> str:
    return f"\\u{ord(error.object[error.start]):04x}"


def decode(text: str | bytes, *, max_depth: int) -> Any:
    """Parse JSON text strictly, for input from clients.

    Raises ``JSONDecodeLimitError`` (a ``ValueError``) for arrays/objects nested deeper
    than ``max_depth`` levels (``[[]]`` is 2 levels; scalars are 0), for ``NaN``,
    ``Infinity`` and ``-Infinity``, for numbers too large for a float (``1e999``), and
    for a string or key holding an unpaired surrogate, escaped (``"\\ud800"``) or not;
    any other bad input raises ``ValueError`` with the ``json`` module's own message.
    Never ``RecursionError``. What it returns can always be encoded as UTF-8.

    The depth is checked before ``json.loads`` runs, by a linear scan, and only when the
    text holds more ``[`` plus ``{`` than ``max_depth`` (fewer openers cannot nest
    deeper), so a typical frame costs two ``str.count`` calls on top of the parse.
    Surrogates cost a ``\\u`` substring test, a search for a surrogate escape only when
    there is one, and a re-encoding of the value (faster than the parse) only when that
    finds one; text that is not ASCII is also encoded to UTF-8 once (raw surrogates).
    ``bytes`` are decoded like ``json.loads`` does (UTF-8/16/32 by detection), but
    strictly: an encoded surrogate is a ``UnicodeDecodeError``."""
    checked = False  # known to hold no raw surrogate
    if isinstance(text, bytes):
        text = text.decode(json.detect_encoding(text))
        checked = True
    if text.count("[") + text.count("{") > max_depth and nesting_depth(text) > max_depth:
        raise JSONDecodeLimitError(f"JSON nested deeper than {max_depth} levels")
    if text.startswith("\ufeff"):  # as json.loads does, which _DECODER.decode does not
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        # Only if max_depth is set near the interpreter's recursion limit.
        raise JSONDecodeLimitError(f"JSON nested too deeply to parse (limit {max_depth} levels)") from None
    if not (checked or text.isascii()):  # isascii is O(1) on ASCII text
        try:
            text.encode()
        except UnicodeEncodeError as error:
            raise JSONDecodeLimitError(f"The text holds a surrogate ({_surrogate(error)}), not a character") from None
    if "\\u" in text and _SURROGATE_ESCAPE.search(text):
        try:
            _REENCODER.encode(value).encode()
        except UnicodeEncodeError as error:
            raise JSONDecodeLimitError(
                f"{_surrogate(error)} is an unpaired surrogate, not a character: JSON strings must be valid Unicode"
            ) from None
    return value
