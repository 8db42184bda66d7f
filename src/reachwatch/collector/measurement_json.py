"""A measurement's JSON text to the dict :func:`~reachwatch.collector.prepare.stage` takes, without
building Python objects for its ``test_keys``.

``test_keys`` is nearly all of a measurement's bytes, and the collector never reads it: it only
validates it, writes it into the stored form and hashes it. Parsing it into Python objects
(``orjson.loads``) and writing them back cost ~25 us of a median 6.6 KB measurement. Here simdjson
validates the line (the same JSON grammar, strict UTF-8, surrogates checked; ~4 us), and then:

- **a new store** (:data:`~reachwatch.store.schema.IDENTITY`, ``blake3-compact``): ``test_keys`` is
  its text as sent, made compact by :mod:`reachwatch.collector.json_text` (spaces dropped, escapes
  written as orjson writes them, numbers as sent), and the rest of the measurement is read by
  ``orjson.loads`` with ``test_keys`` cut out of the text (~7 us in all, session 20);
- **a store made in sessions 10-19** (``blake3-simdjson``, :func:`load_simdjson_form`): the top
  level is taken from simdjson's proxies and ``test_keys`` is written back by simdjson (its
  ``mini``, ~9 us: numbers rewritten, ``2.336e-05`` for ``0.00002336``), ~18 us in all;
- an older store (:data:`~reachwatch.store.schema.ORJSON_IDENTITIES`) parses with orjson.

Either way ``test_keys`` comes as an :class:`orjson.Fragment`, and strings lose their escapes
(``\\u0031`` becomes ``1``) as with orjson, so the scrubbing of addresses from the stored bytes sees
them as the probe meant them. What simdjson takes and orjson does not is refused as orjson refuses
it (a UTF-8 byte order mark); what orjson takes and simdjson does not (integers past 64 bits, which
orjson reads as floats) is refused as inexact; an object with a key holding a NUL (pysimdjson
looks keys up cut at a NUL) and a line at 1,024 levels (simdjson counts the innermost value as one
more) are read by orjson, ``test_keys`` still its compact text (unless given twice: then orjson's
reading, the last, as Python values). Keys given twice: the first is read (orjson keeps the last);
in ``test_keys`` both are stored, as sent. Nesting: simdjson, like ``orjson.loads``, reads up to
1,024 levels, and ``test_keys`` is stored as deep as it came (orjson writes back at most 254).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import orjson
import simdjson

from reachwatch.collector.http import InexactNumber
from reachwatch.collector.json_text import object_member
from reachwatch.store.schema import ORJSON_IDENTITIES, SIMDJSON_IDENTITY

_BOM = b"\xef\xbb\xbf"
#: Documents bigger than this get a parser of their own, freed with them: a parser keeps buffers
#: for the largest document it has read, ~7 bytes per byte (an 11 MB one: 77 MB, for good)
KEPT_PARSER_BYTES = 1 << 20
_local = threading.local()


def _parser() -> simdjson.Parser:
    parser: simdjson.Parser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = simdjson.Parser()
    return parser


def _parse(data: bytes | memoryview) -> Any:
    """The document (a proxy of its top level), or None where orjson must decide (its error
    message says where the fault is; its integers go past 64 bits)."""
    raw = data if type(data) is bytes else bytes(data)  # simdjson reads bytes ~2x faster than a buffer
    if raw[:3] == _BOM:
        return None
    try:
        return (_parser() if len(raw) <= KEPT_PARSER_BYTES else simdjson.Parser()).parse(raw)
    except UnicodeDecodeError:
        return None
    except ValueError as exc:
        return _NUMBER_ERROR if str(exc).startswith("NUMBER_ERROR") else None  # 2**64 and past
    except RuntimeError as exc:
        if "re-use a parser" in str(exc):  # a proxy of the last document still alive somewhere
            _local.parser = None
            return _parse(raw)
        if str(exc).startswith("BIGINT_ERROR"):  # an integer past 64 bits (below -2**63)
            return _NUMBER_ERROR
        return None  # whatever else orjson may take


#: What :func:`_parse` gives for a number simdjson cannot hold: an integer past 64 bits, which
#: orjson reads as a rounded float (``12345678901234567890123`` as ``1.2345678901234568e+22``), or
#: a float past the doubles (``1e400``), which orjson refuses too
_NUMBER_ERROR = "a number past 64 bits"


def _mini(element: Any) -> Any:
    """``element.mini``: bytes, which pysimdjson's stub calls str (compiled, a str is checked for)."""
    return element.mini


def _member(doc: Any, key: str) -> Any:
    """``doc[key]``; KeyError for a key holding a NUL, which pysimdjson looks up cut at the NUL (the
    value of ``"a\\u0000b"`` would be that of ``"a"``, or a KeyError): orjson decides those."""
    if "\x00" in key:
        raise KeyError(key)
    return doc[key]


def _value(element: Any) -> Any:
    """A proxy's value as Python values (a scalar is one already)."""
    if type(element) is simdjson.Object:
        return element.as_dict()
    if type(element) is simdjson.Array:
        return element.as_list()
    return element


def _top(doc: Any, test_keys: bytes | None) -> Any:
    """The document's top level as Python values, ``test_keys`` (if an object) as a Fragment of
    the text given, or else its text as simdjson writes it back; anything but an object as Python
    values."""
    if type(doc) is not simdjson.Object:
        return _value(doc)
    m: dict[str, Any] = {}
    for key in doc:
        value = _member(doc, key)
        if key == "test_keys" and type(value) is simdjson.Object:
            m[key] = orjson.Fragment(_mini(value) if test_keys is None else test_keys)
        else:
            m[key] = _value(value)
    return m


def _member_text(raw: bytes, start: int, key: bytes, compact: bool = True) -> tuple[int, int, bytes | None]:
    """:func:`~reachwatch.collector.json_text.object_member`; raises KeyError where it cannot follow
    text simdjson took (a fault of json_text's: none is known, the tests look for one), so that the
    measurement is read by orjson (its test_keys then written back by orjson: the same form but for
    how its numbers are spelled), never refused nor lost."""
    try:
        found = object_member(raw, start, key, compact)
    except ValueError:
        raise KeyError(key) from None
    if found is None:
        raise KeyError(key)
    return found


def _simdjson_top(raw: bytes, doc: Any) -> Any:
    return _top(doc, None)


def _compact_top(raw: bytes, doc: Any) -> Any:
    """:func:`_top` with ``test_keys`` compact (json_text), read without simdjson's proxies: the
    text but ``test_keys`` by orjson, ``test_keys`` by :func:`~reachwatch.collector.json_text.object_member`."""
    if type(doc) is not simdjson.Object:
        return _value(doc)
    start, end, text = _member_text(raw, 0, b"test_keys")
    if text is None or raw[start] != 0x7B:  # none, or not an object: Python values
        return _top(doc, None)
    m = orjson.loads(raw[:start] + b"0" + raw[end:])
    if len(m) != len(doc):  # a key given twice: the first is read, as simdjson does
        return _top(doc, text)
    m["test_keys"] = orjson.Fragment(text)
    return m


def _submission(doc: Any, test_keys: bytes | None) -> Any:
    """A submission's top level as Python values, its ``content`` as :func:`_top` gives it."""
    if type(doc) is not simdjson.Object:
        return _value(doc)
    return {
        key: _top(_member(doc, key), test_keys) if key == "content" else _value(_member(doc, key))
        for key in doc
    }


def _simdjson_submission(raw: bytes, doc: Any) -> Any:
    return _submission(doc, None)


def _compact_submission(raw: bytes, doc: Any) -> Any:
    """:func:`_simdjson_submission` with the content's ``test_keys`` compact, as :func:`_compact_top`."""
    if type(doc) is not simdjson.Object:
        return _value(doc)
    content_start = _member_text(raw, 0, b"content", compact=False)[0]
    if content_start < 0 or raw[content_start] != 0x7B:
        return _submission(doc, None)  # no content object: no test_keys written back
    start, end, text = _member_text(raw, content_start, b"test_keys")
    if text is None or raw[start] != 0x7B:
        return _submission(doc, None)  # no test_keys object: nothing written back
    m = orjson.loads(raw[:start] + b"0" + raw[end:])
    content = m["content"]
    if len(m) != len(doc) or len(content) != len(_member(doc, "content")):  # a key given twice
        return _submission(doc, text)
    content["test_keys"] = orjson.Fragment(text)
    return m


def _only_member(raw: bytes, start: int, key: bytes) -> tuple[int, int, bytes | None] | None:
    """:func:`~reachwatch.collector.json_text.object_member` (compact) where the object at ``start``
    names ``key`` once (orjson reads the last of a key given twice, json_text the first), else None."""
    try:
        found = object_member(raw, start, key, True)
        if found is None or found[0] < 0:
            return None
        after = raw[found[1] :].lstrip(b" \t\n\r")
        if after[:1] == b"," and object_member(b"{" + after[1:], 0, key) != (-1, -1, None):
            return None  # given again
    except ValueError:
        return None
    return found


def _with_text(raw: bytes, holder: Any, start: int) -> None:
    """In orjson's reading of a line (or of a submission's content, ``holder``, an object starting
    at ``start`` in ``raw``), ``test_keys`` as its compact text (json_text): the form the simdjson
    way gives, numbers as sent, as deep as it came (Python values written back by orjson stop at
    254 levels); unless ``test_keys`` is given twice there (orjson reads the last, json_text the
    first), where the Python values stay."""
    if type(holder) is not dict or type(holder.get("test_keys")) is not dict:
        return
    found = _only_member(raw, start, b"test_keys")
    if found is not None and found[2] is not None:
        holder["test_keys"] = orjson.Fragment(found[2])


def _compact_fallback(raw: bytes, m: Any) -> None:
    _with_text(raw, m, 0)


def _compact_submission_fallback(raw: bytes, m: Any) -> None:
    if type(m) is not dict:
        return
    content = _only_member(raw, 0, b"content")
    if content is not None:
        _with_text(raw, m.get("content"), content[0])


def _load(
    data: bytes | memoryview,
    shape: Callable[[bytes, Any], Any],
    fallback: Callable[[bytes, Any], None] | None = None,
) -> Any:
    """``shape`` of simdjson's document; orjson's reading where simdjson refuses what orjson takes
    (1,024 levels with the innermost value, which simdjson counts as one more) or pysimdjson cannot
    look a key up (one holding a NUL), given to ``fallback`` to put the form's test_keys in."""
    raw = data if type(data) is bytes else bytes(data)
    doc = _parse(raw)
    if doc is _NUMBER_ERROR:
        orjson.loads(raw)  # its error if the text is not JSON, or the number is not a double
        # else it would be stored rounded: the measurement would not be kept as sent
        raise InexactNumber(
            "it holds an integer past 64 bits, which would be stored rounded (as a float): write "
            "it as a string (or as a float, if rounding it is meant)",
            "",
            0,
        )
    if doc is not None:
        try:
            return shape(raw, doc)
        except KeyError:  # a key pysimdjson cannot look up (one holding a NUL): orjson's way
            pass
    m = orjson.loads(raw)
    if fallback is not None:
        fallback(raw, m)
    return m


def load(data: bytes | memoryview) -> Any:
    """One measurement (a batch line), ``test_keys`` compact: see the module's docs. Raises
    :class:`orjson.JSONDecodeError` for text that is not JSON."""
    return _load(data, _compact_top, _compact_fallback)


def load_submission(body: bytes) -> Any:
    """An OONI collector submission, ``{"format": "json", "content": <measurement>}``, with its
    content as :func:`load` gives a measurement. Raises :class:`orjson.JSONDecodeError`."""
    return _load(body, _compact_submission, _compact_submission_fallback)


def load_simdjson_form(data: bytes | memoryview) -> Any:
    """:func:`load` for a store hashing simdjson's form (``blake3-simdjson``)."""
    return _load(data, _simdjson_top)


def load_submission_simdjson_form(body: bytes) -> Any:
    """:func:`load_submission` for a store hashing simdjson's form (``blake3-simdjson``)."""
    return _load(body, _simdjson_submission)


def line_loader(identity: str) -> Callable[[bytes | memoryview], Any]:
    """How a store with this identity hash reads a measurement's text."""
    if identity in ORJSON_IDENTITIES:
        return orjson.loads
    return load_simdjson_form if identity == SIMDJSON_IDENTITY else load


def submission_loader(identity: str) -> Callable[[bytes], Any] | None:
    """How a store with this identity hash reads an OONI submission's text; None: orjson's way."""
    if identity in ORJSON_IDENTITIES:
        return None
    return load_submission_simdjson_form if identity == SIMDJSON_IDENTITY else load_submission


def minified(test_keys: Any) -> orjson.Fragment:
    """The Fragment :func:`load_simdjson_form` gives ``test_keys`` for a measurement given as Python values (a
    store's own import, tests): orjson's text read back by simdjson and minified, so that the same
    measurement has one identity form whichever way it came. Raises TypeError as ``orjson.dumps``."""
    text = orjson.dumps(test_keys)
    doc = _parse(text)
    if type(doc) is not simdjson.Object:  # not an object: the model refuses it later
        return orjson.Fragment(text)
    return orjson.Fragment(_mini(doc))
