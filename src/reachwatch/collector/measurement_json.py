"""A measurement's JSON text to the dict :func:`~reachwatch.collector.prepare.stage` takes, without
building Python objects for its ``test_keys``.

``test_keys`` is nearly all of a measurement's bytes, and the collector never reads it: it only
validates it, writes it back into the stored form and hashes it. Parsing it into Python objects
(``orjson.loads``) and writing them back cost ~25 us of a median 6.6 KB measurement, a fifth of a
batch line's whole cost. simdjson validates the line (the same JSON grammar, strict UTF-8,
surrogates checked) in ~3 us into its own tape, from which the top-level keys are taken as Python
values and ``test_keys`` is written back minified (~7 us) as an :class:`orjson.Fragment`.

That minified form is the measurement's identity form too, so it is a store's choice, recorded
with its secret (:data:`~reachwatch.store.schema.IDENTITY`): it differs from orjson's in how some
numbers are written (``2.336e-05`` for ``0.00002336``), so a store whose rows were hashed from
orjson's form (:data:`~reachwatch.store.schema.ORJSON_IDENTITIES`) keeps parsing with orjson.

Written back minified, strings lose their escapes (``\\u0031`` becomes ``1``) as with orjson, so
the scrubbing of addresses from the stored bytes sees them as the probe meant them. What simdjson
takes and orjson does not is refused as orjson refuses it (a UTF-8 byte order mark); what orjson
takes and simdjson does not (integers past 64 bits, which orjson reads as floats) goes through
orjson, and so does an object with a key holding a NUL (pysimdjson looks keys up cut at a NUL). Keys
given twice: the first is read (orjson keeps the last); in ``test_keys`` both are stored, as sent.
Nesting: simdjson, like ``orjson.loads``, reads up to 1,024 levels, and a minified ``test_keys`` is
stored as deep as it came (orjson writes back at most 254 levels).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import orjson
import simdjson

from reachwatch.collector.http import InexactNumber

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


def _top(doc: Any) -> Any:
    """The document's top level as Python values, ``test_keys`` (if an object) as a Fragment of
    its minified text; anything but an object as Python values."""
    if type(doc) is not simdjson.Object:
        return _value(doc)
    m: dict[str, Any] = {}
    for key in doc:
        value = _member(doc, key)
        if key == "test_keys" and type(value) is simdjson.Object:
            m[key] = orjson.Fragment(_mini(value))
        else:
            m[key] = _value(value)
    return m


def _submission(doc: Any) -> Any:
    """A submission's top level as Python values, its ``content`` as :func:`_top` gives it."""
    if type(doc) is not simdjson.Object:
        return _value(doc)
    return {key: _top(_member(doc, key)) if key == "content" else _value(_member(doc, key)) for key in doc}


def _load(data: bytes | memoryview, shape: Callable[[Any], Any]) -> Any:
    doc = _parse(data)
    if doc is _NUMBER_ERROR:
        orjson.loads(data)  # its error if the text is not JSON, or the number is not a double
        # else it would be stored rounded: the measurement would not be kept as sent
        raise InexactNumber(
            "it holds an integer past 64 bits, which would be stored rounded (as a float): write "
            "it as a string (or as a float, if rounding it is meant)",
            "",
            0,
        )
    if doc is not None:
        try:
            return shape(doc)
        except KeyError:  # a key pysimdjson cannot look up (one holding a NUL): orjson's way
            pass
    return orjson.loads(data)


def load(data: bytes | memoryview) -> Any:
    """One measurement (a batch line): see the module's docs. Raises
    :class:`orjson.JSONDecodeError` for text that is not JSON."""
    return _load(data, _top)


def load_submission(body: bytes) -> Any:
    """An OONI collector submission, ``{"format": "json", "content": <measurement>}``, with its
    content as :func:`load` gives a measurement. Raises :class:`orjson.JSONDecodeError`."""
    return _load(body, _submission)


def minified(test_keys: Any) -> orjson.Fragment:
    """The Fragment :func:`load` gives ``test_keys`` for a measurement given as Python values (a
    store's own import, tests): orjson's text read back by simdjson and minified, so that the same
    measurement has one identity form whichever way it came. Raises TypeError as ``orjson.dumps``."""
    text = orjson.dumps(test_keys)
    doc = _parse(text)
    if type(doc) is not simdjson.Object:  # not an object: the model refuses it later
        return orjson.Fragment(text)
    return orjson.Fragment(_mini(doc))
