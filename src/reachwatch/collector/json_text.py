"""A measurement's ``test_keys`` as compact text, taken from the bytes the probe sent.

``test_keys`` is nearly all of a measurement's bytes, and the collector never reads it: it stores
it and hashes it. What it stores and hashes (:data:`~reachwatch.store.schema.IDENTITY`,
``blake3-compact``) is the text as sent with

- the spaces between tokens dropped;
- every string's escapes written as orjson writes them: ``"``, ``\\`` and the control
  characters escaped (``\\b \\t \\n \\f \\r`` by name, the others as ``\\u00xx``), everything
  else as UTF-8 (``\\u0031`` becomes ``1``, ``\\/`` becomes ``/``, ``\\u003c`` becomes ``<``), so
  that the scrubbing of addresses sees the strings as the probe meant them;
- numbers as sent (``1E2`` stays ``1E2``): they are never rewritten, so none is rounded.

So orjson's own output is already compact (``compact(orjson.dumps(v))`` is itself): a measurement
given as Python values (a store's import, the tests) gets the same identity as the same measurement
sent as text by orjson, and any two texts differing only in spaces and escapes get the same one.

:func:`object_member` finds where a member's value is in an object's text, and with ``compact``
writes that value's compact text as it goes, so that the rest of the measurement can be read by
``orjson.loads`` with the value cut out, without ``test_keys`` being parsed into Python objects.

Both take text simdjson has validated (:mod:`reachwatch.collector.measurement_json`); what is not
well-formed JSON is a :class:`ValueError`. They run in C (``_json_text.c``: ~2 us for a median
measurement's 5.9 KB ``test_keys``, where simdjson's writing it back took ~9); this module's own
versions are the same rules in Python (regular expressions and orjson, ~0.6 ms), used with
``REACHWATCH_MYPYC=0`` or where the extension is not built or older than its source
(:func:`reachwatch.compiled.c_extension`), and checked against it by the tests.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Final

import orjson

from reachwatch.compiled import c_extension

_STRING = rb'"[^"\\]*(?:\\.[^"\\]*)*"'
#: One token: a string, a run of spaces, a structural character, or a scalar's text
_TOKEN: Final = re.compile(_STRING + rb"|[ \t\n\r]+|[{}\[\]:,]|[^\"{}\[\]:, \t\n\r]+", re.DOTALL)
_SPACE: Final = frozenset(b" \t\n\r")


def _string(token: bytes) -> bytes:
    """A string token as orjson writes it."""
    if b"\\" not in token:
        return token
    try:
        return orjson.dumps(orjson.loads(token))
    except orjson.JSONDecodeError:
        raise ValueError("an escape that is not JSON") from None


def py_compact(data: bytes, start: int, end: int, /) -> bytes:
    """:func:`compact` in Python."""
    if start < 0 or end > len(data) or start > end:
        raise IndexError("compact: start and end must lie within the text")
    return b"".join(_string(t) if t[0] == 0x22 else t for t, _, _ in _significant(data, start, end))


def _significant(data: bytes, start: int, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """Each token of ``data[start:end]`` but the spaces, with where it starts and ends."""
    stop = len(data) if end is None else end
    i = start
    while i < stop:
        m = _TOKEN.match(data, i, stop)
        if m is None:
            raise ValueError(f"a string not closed at byte {i}")
        i = m.end()
        if m.group()[0] not in _SPACE:
            yield m.group(), m.start(), i


def py_object_member(
    data: bytes, start: int, key: bytes, compact: bool = False, /
) -> tuple[int, int, bytes | None] | None:
    """:func:`object_member` in Python."""
    if start < 0 or start > len(data):
        raise IndexError("object_member: start must lie within the text")
    tokens = _significant(data, start)

    def take(fault: str) -> tuple[bytes, int, int]:
        t = next(tokens, None)
        if t is None:
            raise ValueError(f"{fault} at byte {len(data)}")
        return t

    first = next(tokens, None)
    if first is None or first[0] != b"{":
        return None
    t = take("an object not closed")
    if t[0] == b"}":
        return (-1, -1, None)
    while True:
        if t[0][0] != 0x22:
            raise ValueError(f"a member without a name at byte {t[1]}")
        try:
            wanted = orjson.loads(t[0]) == key.decode()
        except orjson.JSONDecodeError:
            raise ValueError(f"a name that is not JSON at byte {t[1]}") from None
        t = take("a name without a colon")
        if t[0] != b":":
            raise ValueError(f"a name without a colon at byte {t[1]}")
        t = take("a value not closed")
        if t[0] in (b",", b"}", b"]", b":"):
            raise ValueError(f"a value not closed at byte {t[1]}")
        if wanted and not compact:
            return (t[1], -1, None)
        value_start, depth = t[1], 0
        while True:
            if t[0] in (b"{", b"["):
                depth += 1
            elif t[0] in (b"}", b"]"):
                depth -= 1
            if depth == 0:
                break
            t = take("a value not closed")
        if wanted:
            return (value_start, t[2], py_compact(data, value_start, t[2]))
        t = take("an object not closed")
        if t[0] == b"}":
            return (-1, -1, None)
        if t[0] != b",":
            raise ValueError(f"an object not closed at byte {t[1]}")
        t = take("a member without a name")


compact, object_member = py_compact, py_object_member
if c_extension("reachwatch.collector._json_text"):
    with contextlib.suppress(ImportError):  # not built (a plain-Python install): the Python above
        from reachwatch.collector._json_text import compact, object_member  # noqa: F401 (this module's API)
