"""The compact text of a measurement's test_keys: spaces dropped, escapes as orjson writes them,
numbers as sent; the C extension and the module's own Python agree on every input."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reachwatch.collector import json_text
from reachwatch.compiled import c_extension

try:
    from reachwatch.collector import _json_text
except ImportError:  # the plain-Python install: the Python versions alone
    _json_text = None  # type: ignore[assignment]

Compact = Callable[[bytes, int, int], bytes]
Member = Callable[..., "tuple[int, int, bytes | None] | None"]
IMPLEMENTATIONS: list[tuple[Compact, Member]] = [(json_text.py_compact, json_text.py_object_member)]
if _json_text is not None:
    IMPLEMENTATIONS.insert(0, (_json_text.compact, _json_text.object_member))
IDS = ["c", "python"][-len(IMPLEMENTATIONS) :]


def test_the_extension_is_what_runs_where_it_is_built() -> None:
    if _json_text is None or not c_extension("reachwatch.collector._json_text"):
        assert json_text.compact is json_text.py_compact
        pytest.skip("the C extension is not built, or not used (REACHWATCH_MYPYC=0)")
    assert json_text.compact is _json_text.compact and json_text.object_member is _json_text.object_member


def _escaped(cp: int) -> str:
    """``cp`` as a JSON escape (a surrogate pair past the BMP), upper-case hex where it has letters."""
    if cp < 0x10000:
        return f"\\u{cp:04X}"
    v = cp - 0x10000
    return f"\\u{0xD800 + (v >> 10):04X}\\u{0xDC00 + (v & 0x3FF):04x}"


CODE_POINTS = [cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]


@pytest.mark.parametrize(("compact", "_"), IMPLEMENTATIONS, ids=IDS)
def test_every_code_point_escaped_is_written_as_orjson_writes_it(compact: Compact, _: Member) -> None:
    """All 1,112,064 of them, escaped, and raw where JSON lets them be: one text, orjson's."""
    points = CODE_POINTS if compact is not json_text.py_compact else CODE_POINTS[::97]
    want = orjson.dumps([chr(cp) for cp in points])
    escaped = ("[" + ",".join(f'"{_escaped(cp)}"' for cp in points) + "]").encode()
    assert compact(escaped, 0, len(escaped)) == want
    raw = orjson.dumps([chr(cp) for cp in points])  # controls, " and \ escaped, the rest as UTF-8
    assert compact(raw, 0, len(raw)) == want
    named = b'["\\b\\f\\n\\r\\t\\"\\\\\\/"]'
    assert compact(named, 0, len(named)) == orjson.dumps(['\b\f\n\r\t"\\/'])


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(['"', "\\", "\\u0031", " \n\t", "é\u2028", "😀", "</a>"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=30,
)
#: The same values in other writers' layouts: Python's json (ASCII escapes, spaces, indents)
LAYOUTS: list[Callable[[Any], bytes]] = [
    lambda v: json.dumps(v, separators=(",", ":"), ensure_ascii=False).encode(),
    lambda v: json.dumps(v).encode(),
    lambda v: json.dumps(v, indent=2).encode(),
    lambda v: b" \r\n" + json.dumps(v, separators=(" , ", " :\t")).encode() + b"\n ",
]


@pytest.mark.parametrize(("compact", "_"), IMPLEMENTATIONS, ids=IDS)
@settings(max_examples=300, deadline=None)
@given(value=JSON)
def test_the_compact_text_is_one_whatever_the_spaces_and_escapes(
    compact: Compact, _: Member, value: Any
) -> None:
    """orjson's text is its own compact text; another writer's, spaced and escaped otherwise but
    spelling its numbers alike, compacts to one text; every compact text reads back as the value."""
    text = orjson.dumps(value)
    assert compact(text, 0, len(text)) == text
    texts = [layout(value) for layout in LAYOUTS]
    compacted = {compact(t, 0, len(t)) for t in texts}
    assert len(compacted) == 1
    (one,) = compacted
    assert orjson.loads(one) == orjson.loads(text)
    assert compact(one, 0, len(one)) == one


@settings(max_examples=300, deadline=None)
@given(value=JSON, cut=st.integers(0, 40), layout=st.sampled_from(LAYOUTS))
def test_c_and_python_agree_on_any_slice(value: Any, cut: int, layout: Callable[[Any], bytes]) -> None:
    if _json_text is None:
        pytest.skip("the C extension is not built (a plain-Python install)")
    text = layout(value)
    for start, end in ((0, len(text)), (min(cut, len(text)), len(text)), (0, max(0, len(text) - cut))):
        try:
            want: Any = json_text.py_compact(text, start, end)
        except ValueError:
            want = ValueError
        try:
            got: Any = _json_text.compact(text, start, end)
        except ValueError:
            got = ValueError
        if want is not ValueError and got is not ValueError:
            assert got == want
        elif got is not ValueError:  # the Python one found fault; C need not, but gives bytes
            assert isinstance(got, bytes)


KEYS = st.sampled_from(["test_keys", "content", "test_name", "a", "", "é", '"test_keys"', "\\"]) | st.text(
    max_size=5
)


@pytest.mark.parametrize(("_", "object_member"), IMPLEMENTATIONS, ids=IDS)
@settings(max_examples=300, deadline=None)
@given(members=st.lists(st.tuples(KEYS, JSON), max_size=6), key=KEYS, layout=st.sampled_from(LAYOUTS))
def test_object_member_finds_the_first_member_named(
    _: Compact,
    object_member: Member,
    members: list[tuple[str, Any]],
    key: str,
    layout: Callable[[Any], bytes],
) -> None:
    """Keys given twice (the first is found), escaped (``\\u0074est_keys``), spaced anyhow: where
    the value is, and its compact text on request."""
    text = b"{" + b",".join(layout(k) + b":" + layout(v) for k, v in members) + b"}"
    if layout is LAYOUTS[2]:
        text = b"{\n " + b",\n ".join(layout(k) + b" : " + layout(v) for k, v in members) + b"\n}"
    found = object_member(text, 0, key.encode(), True)
    assert found is not None
    start, end, compacted = found
    first = next((v for k, v in members if k == key), KeyError)
    if first is KeyError:
        assert (start, end, compacted) == (-1, -1, None)
        assert object_member(text, 0, key.encode()) == (-1, -1, None)
        return
    assert orjson.loads(text[start:end]) == orjson.loads(orjson.dumps(first))
    assert compacted == json_text.py_compact(text, start, end)
    assert object_member(text, 0, key.encode()) == (start, -1, None)


@pytest.mark.parametrize(("_", "object_member"), IMPLEMENTATIONS, ids=IDS)
def test_object_member_of_what_is_not_an_object(_: Compact, object_member: Member) -> None:
    for text in (b"[1]", b'"x"', b"  1", b"", b"null"):
        assert object_member(text, 0, b"a") is None
    assert object_member(b" { } ", 0, b"a") == (-1, -1, None)
    assert object_member(b'{"a": {"b": 1}}', 6, b"b", True) == (12, 13, b"1")
    assert object_member(b'{"test\\u005fkeys" :1 , "test_keys":2}', 0, b"test_keys") == (19, -1, None)
    assert object_member(b'{"a\\u0000":1,"a":2}', 0, b"a", True) == (17, 18, b"2")
    with pytest.raises(IndexError):
        object_member(b"{}", 3, b"a")


@pytest.mark.parametrize(("compact", "object_member"), IMPLEMENTATIONS, ids=IDS)
def test_text_that_is_not_json_is_a_value_error(compact: Compact, object_member: Member) -> None:
    for text in (b'{"a":"b', b'{"a":"\\x"}', b'{"a":"\\ud800"}', b'{"a":"\\udc00"}', b'{"a":"\\u12"}'):
        with pytest.raises(ValueError):
            compact(text, 0, len(text))
    for text in (b'{"a"', b'{"a" 1}', b'{"a":}', b'{"a":1', b'{"a":1 "b":2}', b"{1:2}", b'{"a":[1}'):
        with pytest.raises(ValueError):
            object_member(text, 0, b"z", True)  # read to the end: no member z
    with pytest.raises(IndexError):
        compact(b"[]", 1, 5)


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=64), st.integers(0, 70), st.integers(0, 70), st.sampled_from([b"a", b"test_keys"]))
def test_any_bytes_are_a_result_or_a_value_error(data: bytes, start: int, end: int, key: bytes) -> None:
    """The C extension reads text simdjson took, but anything else may reach it by a fault of ours:
    never a read past the buffer (a crash would end the test run), only a result or an error."""
    for compact, object_member in IMPLEMENTATIONS:
        with contextlib.suppress(ValueError, IndexError):
            compact(data, start, end)
        with contextlib.suppress(ValueError, IndexError):
            object_member(data, start, key, True)


@pytest.mark.parametrize(("compact", "object_member"), IMPLEMENTATIONS, ids=IDS)
def test_real_measurements_in_every_layout(compact: Compact, object_member: Member) -> None:
    """OONI's measurements (Go's escapes: ``\\u003c`` for ``<``), as sent and laid out otherwise:
    test_keys found and made compact alike, as the Python version does, whole and cut anywhere."""
    from collector.test_measurement_json import shared_lines

    for line in shared_lines():
        value = orjson.loads(line)
        layouts = [line, json.dumps(value, indent=3).encode(), json.dumps(value, ensure_ascii=False).encode()]
        texts = set()
        for text in layouts:
            found = object_member(text, 0, b"test_keys", True)
            assert found is not None and found[2] is not None
            start, end, compacted = found
            assert compacted == json_text.py_compact(text, start, end) == compact(text, start, end)
            assert orjson.loads(compacted) == value["test_keys"]
            texts.add(compacted)
        assert len(texts) <= 2  # Go's number spellings and Python's may differ; never the strings
        for cut in range(1, len(line), max(1, len(line) // 50)):
            with contextlib.suppress(ValueError):
                object_member(line[:cut], 0, b"test_keys", True)
