"""Hostile JSON: deep nesting, NaN/Infinity and oversized bodies are answered with clear
JSON errors, never a crash, and nothing is written (``paintbrush.encoding.decode``,
``paintbrush.parsers``)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from typing import Any

from django.conf import settings
from django.test import SimpleTestCase, TestCase
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.exceptions import ParseError

from paintbrush.encoding import JSONDecodeLimitError, decode, encode, nesting_depth
from paintbrush.parsers import BodyTooLarge, JSONParser, max_json_depth
from paintbrush.settings import DEFAULTS
from project.demo.models import Todo

DEPTH = DEFAULTS["MAX_JSON_DEPTH"]

# No example database on disk, no per-example deadline (CI machines are slow and shared).
examples = hypothesis_settings(max_examples=300, deadline=None, database=None)


def depth_of(value: Any) -> int:
    """Levels of arrays/objects, as ``decode`` counts them: ``[[]]`` is 2, a scalar 0."""
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth_of, value.values()), default=0)
    return 0


def nested(levels: int, inner: str = "") -> str:
    return "[" * levels + inner + "]" * levels


# Strings full of the characters a depth scan could trip on.
tricky_text = st.text(alphabet='[]{}"\\/ ,:ab\u00e9\U0001f600\n') | st.text()
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | tricky_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(tricky_text, children, max_size=4),
    max_leaves=30,
)
# Text that is often almost JSON: every token the scan or the parser treats specially.
TOKENS = ["[", "]", "{", "}", '"', "\\", '\\"', ",", ":", " ", "1", "-", ".", "e5", "a", '"k":']
TOKENS += ["true", "null", "NaN", "Infinity", "-Infinity", "\ufeff", "\x00", "\u00e9"]
TOKENS += ["\\ud800", "\\uDC00", "\\ud83d\\ude00", "\\u00e9", "\\\\"]  # escapes: surrogates, others
jsonish_text = st.lists(st.sampled_from(TOKENS), max_size=60).map("".join)
# JSON strings of surrogate escapes, other escapes, and text that looks like an escape
# (an escaped backslash, then "u" and "d83d"): always valid JSON.
STRING_PARTS = ["\\ud800", "\\uDBFF", "\\ud83d", "\\udc00", "\\uDE00", "\\uDFFF", "\\u00e9", "\\\\", "u", "d83d", "a"]
escaped_strings = st.lists(st.sampled_from(STRING_PARTS), max_size=8).map(lambda parts: '"' + "".join(parts) + '"')
deep_text = st.builds(nested, st.integers(0, 3000)) | st.builds(
    lambda n, tail: "[" * n + tail, st.integers(0, 3000), jsonish_text
)


class DecodeTests(SimpleTestCase):
    def test_depth_exactly_at_the_limit_passes(self) -> None:
        self.assertEqual(depth_of(decode(nested(32), max_depth=32)), 32)
        self.assertEqual(depth_of(decode('{"a":' * 32 + "1" + "}" * 32, max_depth=32)), 32)
        self.assertEqual(decode("[[]]", max_depth=2), [[]])

    def test_one_level_over_the_limit_fails_with_a_clear_message(self) -> None:
        cases = [(nested(33), 32), ('{"a":' * 33 + "1" + "}" * 33, 32), ('[{"a":' * 17 + "}]" * 17, 32), ("[[[]]]", 2)]
        for text, limit in cases:
            with self.subTest(text=text[:12]), self.assertRaises(JSONDecodeLimitError) as caught:
                decode(text, max_depth=limit)
            self.assertEqual(str(caught.exception), f"JSON nested deeper than {limit} levels")
            self.assertIsInstance(caught.exception, ValueError)

    def test_scalars_are_depth_zero(self) -> None:
        self.assertEqual(decode("1", max_depth=0), 1)
        self.assertEqual(decode('"[[["', max_depth=0), "[[[")
        with self.assertRaises(JSONDecodeLimitError):
            decode("[]", max_depth=0)

    def test_brackets_inside_strings_do_not_count(self) -> None:
        cases = {
            '["' + "[" * 100 + '"]': ["[" * 100],
            '{"' + "{[" * 100 + '": "]]]]"}': {"{[" * 100: "]]]]"},
            '["\\"' + "[" * 100 + '"]': ['"' + "[" * 100],  # an escaped quote does not end the string
            '["\\\\", [' + '"[["' + "]]": ["\\", ["[["]],  # an escaped backslash does not escape the quote
        }
        for text, value in cases.items():
            with self.subTest(text=text[:20]):
                self.assertEqual(decode(text, max_depth=2), value)

    def test_nesting_depth_scan(self) -> None:
        self.assertEqual(nesting_depth(""), 0)
        self.assertEqual(nesting_depth("[[]] [[[]]]"), 3)
        self.assertEqual(nesting_depth('["]", "\\"]", {"}": [1]}]'), 3)
        self.assertEqual(nesting_depth('["unterminated [[[['), 1)
        self.assertEqual(nesting_depth('["lone backslash at the end \\'), 1)

    def test_the_scan_is_linear_on_hostile_strings(self) -> None:
        # Thousands of unterminated quotes: a naive pattern retries from each one (quadratic).
        for text in ('["' + '\\"' * 200_000 + "[" * 100, "[" + '"\\' * 200_000, "[" * 500_000):
            with self.subTest(text=text[:10]), self.assertRaises(ValueError):
                decode(text, max_depth=32)

    def test_nan_and_infinity_are_rejected(self) -> None:
        for token in ("NaN", "Infinity", "-Infinity"):
            for text in (token, f"[{token}]", f'{{"title": {token}}}', f"[1, [2, {token}]]"):
                with self.subTest(text=text), self.assertRaises(JSONDecodeLimitError) as caught:
                    decode(text, max_depth=32)
                self.assertEqual(str(caught.exception), f"{token} is not valid JSON")
        self.assertEqual(decode('["NaN", "Infinity"]', max_depth=32), ["NaN", "Infinity"])

    def test_a_number_too_large_for_a_float_is_rejected_not_infinity(self) -> None:
        for text in ("1e999", "[-1e999]", '{"a": 2E+400}'):
            with self.subTest(text=text), self.assertRaises(JSONDecodeLimitError):
                decode(text, max_depth=32)
        self.assertEqual(decode("[1e308, 10]", max_depth=32), [1e308, 10])

    def test_malformed_json_raises_the_json_modules_error(self) -> None:
        for text in ("", "{not json", "[1,]", "[1] ]", "\ufeff[1]", '"\\x"', b"\xff\xfe\xfd"):
            with self.subTest(text=text):
                try:
                    json.loads(text)
                except ValueError as expected:
                    with self.assertRaises(ValueError) as caught:
                        decode(text, max_depth=32)
                    self.assertNotIsInstance(caught.exception, JSONDecodeLimitError)
                    self.assertEqual(str(caught.exception), str(expected))
                else:
                    self.fail("json.loads accepted it")

    def test_bytes_are_decoded_like_json_loads(self) -> None:
        for data in ('{"é": [1]}'.encode(), '[{"a": "€"}]'.encode("utf-16"), "\ufeff[1]".encode("utf-8")):
            with self.subTest(data=data):
                self.assertEqual(decode(data, max_depth=32), json.loads(data))

    def test_an_escaped_surrogate_pair_is_one_character_in_either_case(self) -> None:
        for pair in ("\\ud83d\\ude00", "\\uD83D\\uDE00", "\\uD83d\\udE00"):
            text = f'["{pair}", {{"{pair}": "x{pair}y"}}]'
            with self.subTest(pair=pair):
                self.assertEqual(decode(text, max_depth=2), ["\U0001f600", {"\U0001f600": "x\U0001f600y"}])
                self.assertEqual(decode(text.encode(), max_depth=2), json.loads(text))

    def test_an_unpaired_surrogate_escape_is_refused_naming_it(self) -> None:
        cases = {
            '"\\ud800"': "\\ud800",
            '"\\uD800"': "\\ud800",
            '"\\uDbFf"': "\\udbff",
            '"\\udc00"': "\\udc00",  # a low half alone
            '"\\uDFFF"': "\\udfff",
            '"\\ude00\\ud83d"': "\\ude00",  # the halves in the wrong order
            '"\\ud800\\ud83d\\ude00"': "\\ud800",  # a high half, then a pair
            '"\\ud83dx\\ude00"': "\\ud83d",  # the halves apart
            '["\\ud83d", "\\ude00"]': "\\ud83d",  # in two strings
            '{"\\ud800": 1}': "\\ud800",  # in a key
            '"\\\\\\ud800"': "\\ud800",  # an escaped backslash, then the escape
            '"\\\\ud800\\udc00"': "\\udc00",  # "\\ud800" is text: the low half is alone
            '{"action":"opendoc","resource":"\\ud800"}': "\\ud800",
        }
        for text, named in cases.items():
            json.loads(text)  # which takes it
            for data in (text, text.encode()):
                with self.subTest(data=data), self.assertRaises(JSONDecodeLimitError) as caught:
                    decode(data, max_depth=2)
                self.assertEqual(
                    str(caught.exception),
                    f"{named} is an unpaired surrogate, not a character: JSON strings must be valid Unicode",
                )

    def test_ud800_after_an_escaped_backslash_is_plain_text(self) -> None:
        self.assertEqual(decode('"\\\\ud800"', max_depth=0), "\\ud800")
        self.assertEqual(decode('["\\\\uD83D", "\\u00e9\\u0000"]', max_depth=1), ["\\uD83D", "\u00e9\x00"])

    def test_a_raw_surrogate_is_refused(self) -> None:
        # Not from a server (a socket frame or a body decoded strictly holds none), but
        # from a caller's str; bytes are decoded strictly (json.loads passes surrogates).
        for text in ('"\ud800"', '["\u00e9", "\udfff"]', '"\ud83d\ude00"'):
            with self.subTest(text=text), self.assertRaisesMessage(JSONDecodeLimitError, "The text holds a surrogate"):
                decode(text, max_depth=1)
        for data in (b'"\xed\xa0\x80"', '"\ud800"'.encode("utf-16-le", "surrogatepass")):
            with self.subTest(data=data), self.assertRaises(UnicodeDecodeError):
                decode(data, max_depth=1)

    def test_big_flat_arrays_and_objects_are_fine(self) -> None:
        values: list[Any] = [
            list(range(200_000)),
            [{"id": i, "title": "[{" * 3} for i in range(20_000)],
            {str(i): [i] for i in range(20_000)},
        ]
        for value in values:
            with self.subTest(kind=type(value).__name__):
                self.assertEqual(decode(json.dumps(value), max_depth=2), value)

    def test_even_a_huge_limit_never_raises_recursion_error(self) -> None:
        with self.assertRaises(JSONDecodeLimitError):
            decode(nested(100_000), max_depth=1_000_000)

    @examples
    @given(text=st.one_of(st.text(), jsonish_text, deep_text, st.binary()), max_depth=st.integers(0, 64))
    def test_any_text_is_parsed_like_json_loads_or_refused_with_value_error(
        self, text: str | bytes, max_depth: int
    ) -> None:
        try:
            expected = json.loads(text)
        except (ValueError, RecursionError):
            refused = True
        else:
            refused = False
        try:
            value = decode(text, max_depth=max_depth)
        except ValueError:  # anything else (RecursionError included) fails the test
            return
        self.assertFalse(refused, "decode accepted what json.loads refuses")
        self.assertEqual(value, expected)
        self.assertLessEqual(depth_of(value), max_depth)
        encode(value).encode()  # what decode accepts can be sent back (no lone surrogate)

    @examples
    @given(text=escaped_strings)
    def test_a_string_is_refused_exactly_when_json_loads_gives_an_unpaired_surrogate(self, text: str) -> None:
        expected = json.loads(text)
        try:
            expected.encode()
        except UnicodeEncodeError:
            with self.assertRaisesMessage(JSONDecodeLimitError, "is an unpaired surrogate"):
                decode(text, max_depth=0)
        else:
            self.assertEqual(decode(text, max_depth=0), expected)

    @examples
    @given(value=json_values, max_depth=st.integers(0, 6), ensure_ascii=st.booleans())
    def test_json_values_round_trip_within_the_depth(self, value: Any, max_depth: int, ensure_ascii: bool) -> None:
        text = json.dumps(value, ensure_ascii=ensure_ascii)
        self.assertEqual(nesting_depth(text), depth_of(value))
        if depth_of(value) <= max_depth:
            self.assertEqual(decode(text, max_depth=max_depth), value)
            self.assertEqual(decode(text.encode(), max_depth=max_depth), value)
        else:
            with self.assertRaises(JSONDecodeLimitError):
                decode(text, max_depth=max_depth)


class ParserTests(SimpleTestCase):
    def parse(self, body: bytes, **context: Any) -> Any:
        return JSONParser().parse(io.BytesIO(body), "application/json", context)

    def test_the_depth_limit_is_a_setting(self) -> None:
        self.assertEqual(max_json_depth(), DEPTH)
        with self.settings(PAINTBRUSH={"MAX_JSON_DEPTH": 3}):
            self.assertEqual(max_json_depth(), 3)
            self.assertEqual(self.parse(b'{"a": [[1]]}'), {"a": [[1]]})
            with self.assertRaisesMessage(ParseError, "JSON parse error - JSON nested deeper than 3 levels"):
                self.parse(b'{"a": [[[1]]]}')

    def test_bad_bodies_are_parse_errors_naming_the_fault(self) -> None:
        cases = {
            b'{"title": ' + nested(2000).encode() + b"}": f"nested deeper than {DEPTH} levels",
            b'{"title": NaN}': "NaN is not valid JSON",
            b'{"title": -Infinity}': "-Infinity is not valid JSON",
            b"{not json": "Expecting property name enclosed in double quotes",
            b'{"title": "\xff"}': "can't decode byte 0xff",
            b'{"title": "\\ud800"}': "\\ud800 is an unpaired surrogate",
        }
        for body, message in cases.items():
            with self.subTest(body=body[:20]), self.assertRaisesMessage(ParseError, message):
                self.parse(body)

    def test_the_charset_of_the_content_type_is_used_and_must_be_text(self) -> None:
        self.assertEqual(self.parse('{"t": "é"}'.encode("latin-1"), encoding="latin-1"), {"t": "é"})
        with self.assertRaisesMessage(ParseError, 'Unsupported charset "bz2_codec"'):
            self.parse(b"", encoding="bz2_codec")
        # A charset that makes surrogates of escapes: refused all the same.
        with self.assertRaisesMessage(ParseError, "The text holds a surrogate (\\ud800)"):
            self.parse(b'{"t": "\\ud800"}', encoding="unicode_escape")

    def test_body_too_large_is_a_413_naming_the_limit(self) -> None:
        exc = BodyTooLarge()
        self.assertEqual(exc.status_code, 413)
        self.assertEqual(
            str(exc.detail), f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."
        )


class RestTests(TestCase):
    """End to end on the demo's ``todos``; these need ``paintbrush.parsers.JSONParser`` as
    the viewset's parser and ``RequestDataTooBig`` mapped to ``BodyTooLarge``."""

    def send(self, method: str, path: str, body: str) -> Any:
        with self.captureOnCommitCallbacks(execute=True) as callbacks:
            response = getattr(self.client, method)(path, body, content_type="application/json")
        self.assertEqual(callbacks, [], "something was committed")
        return response

    def assert_json_error(self, response: Any, status: int, detail: str) -> None:
        self.assertEqual(response.status_code, status)
        self.assertEqual(response["Content-Type"], "application/json")
        self.assertIn(detail, response.json()["detail"])

    def test_a_2000_level_body_is_400_and_writes_nothing(self) -> None:
        todo = Todo.objects.create(title="a")
        deep = '{"title": "x", "tags": ' + nested(2000) + "}"
        detail = f"nested deeper than {max_json_depth()} levels"
        self.assert_json_error(self.send("post", "/api/todos", deep), 400, detail)
        self.assert_json_error(self.send("patch", f"/api/todos/{todo.pk}", deep), 400, detail)
        self.assertEqual(list(Todo.objects.values_list("title", "version")), [("a", 1)])

    def test_a_body_at_the_depth_limit_is_accepted(self) -> None:
        # The object itself is the first level.
        response = self.client.post(
            "/api/todos",
            '{"title": "x", "tags": ' + nested(max_json_depth() - 1) + "}",
            content_type="application/json",
        )
        self.assertEqual(response.status_code, 201)
        self.assertEqual(Todo.objects.get().title, "x")

    def test_nan_and_infinity_bodies_are_400_and_write_nothing(self) -> None:
        todo = Todo.objects.create(title="a")
        self.assert_json_error(self.send("post", "/api/todos", '{"title": NaN}'), 400, "NaN")
        self.assert_json_error(self.send("put", f"/api/todos/{todo.pk}", '{"done": Infinity}'), 400, "Infinity")
        self.assertEqual(list(Todo.objects.values_list("title", "version")), [("a", 1)])

    def test_an_unpaired_surrogate_is_400_and_writes_nothing_a_pair_is_a_character(self) -> None:
        todo = Todo.objects.create(title="a")
        detail = "\\ud800 is an unpaired surrogate"
        self.assert_json_error(self.send("post", "/api/todos", '{"title": "\\ud800"}'), 400, detail)
        self.assert_json_error(self.send("patch", f"/api/todos/{todo.pk}", '{"title": "x\\uD800"}'), 400, detail)
        self.assertEqual(list(Todo.objects.values_list("title", "version")), [("a", 1)])
        response = self.client.post("/api/todos", '{"title": "\\ud83d\\ude00"}', content_type="application/json")
        self.assertEqual((response.status_code, response.json()["title"]), (201, "\U0001f600"))

    def test_a_3_mb_body_is_413_json_and_writes_nothing(self) -> None:
        todo = Todo.objects.create(title="a")
        big = json.dumps({"title": "x" * 3_000_000})
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        self.assertGreater(len(big), limit)
        detail = f"The request body is larger than {limit} bytes."
        self.assert_json_error(self.send("post", "/api/todos", big), 413, detail)
        self.assert_json_error(self.send("put", f"/api/todos/{todo.pk}", big), 413, detail)
        self.assertEqual(list(Todo.objects.values_list("title", "version")), [("a", 1)])


class DebugDefaultTests(SimpleTestCase):
    def test_the_demo_settings_are_not_in_debug_mode_unless_asked(self) -> None:
        # A technical 500 page lists the settings: only an explicit DJANGO_DEBUG=1 shows it.
        code = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"
        env = {k: v for k, v in os.environ.items() if k != "DJANGO_DEBUG"}
        env["DJANGO_SETTINGS_MODULE"] = "project.settings"
        for value, expected in ((None, "False"), ("1", "True")):
            if value is not None:
                env["DJANGO_DEBUG"] = value
            out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
            self.assertEqual(out.stdout.strip(), expected)
