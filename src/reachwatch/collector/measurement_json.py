"""A measurement's JSON text to the dict :func:`~reachwatch.collector.prepare.stage` takes, without
building Python objects for its ``test_keys``: in a new store, their text as it came, cut from the
request (:func:`load_as_sent`, since session 14: ~10 us less a median line); in a store from
sessions 10-13, minified by simdjson (:func:`load`, below).

``test_keys`` is nearly all of a measurement's bytes, and the collector never reads it: it only
validates it, writes it back into the stored form and hashes it. Parsing it into Python objects
(``orjson.loads``) and writing them back cost ~25 us of a median 6.6 KB measurement, a fifth of a
batch line's whole cost. simdjson validates the line (the same JSON grammar, strict UTF-8,
surrogates checked) in ~3 us into its own tape, from which the top-level keys are taken as Python
values and ``test_keys`` is written back minified (~7 us) as an :class:`orjson.Fragment`.

That minified form is the measurement's identity form too, so it is a store's choice, recorded
with its secret (:data:`~reachwatch.store.schema.SIMDJSON_IDENTITY`): it differs from orjson's in how some
numbers are written (``2.336e-05`` for ``0.00002336``), so a store whose rows were hashed from
orjson's form (:data:`~reachwatch.store.schema.ORJSON_IDENTITIES`) keeps parsing with orjson.

Written back minified, strings lose their escapes (``\\u0031`` becomes ``1``) as with orjson, so
the scrubbing of addresses from the stored bytes sees them as the probe meant them. What simdjson
takes and orjson does not is refused as orjson refuses it (a UTF-8 byte order mark); what orjson
takes and simdjson does not (integers past 64 bits, which orjson reads as floats) goes through
orjson, and so does an object with a key pysimdjson cannot look up (one holding a NUL). Keys
given twice: the first is read (orjson keeps the last); in ``test_keys`` both are stored, as sent.
Nesting: simdjson, like ``orjson.loads``, reads up to 1,024 levels, and a minified ``test_keys`` is
stored as deep as it came (orjson writes back at most 254 levels).
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Callable
from typing import Any

import orjson
import simdjson

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
    except (ValueError, UnicodeDecodeError):
        return None
    except RuntimeError as exc:
        if "re-use a parser" in str(exc):  # a proxy of the last document still alive somewhere
            _local.parser = None
            return _parse(raw)
        return None  # BIGINT_ERROR, and whatever else orjson may take


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


def _load(data: bytes | memoryview, shape: Callable[[Any], Any], doc: Any = None) -> Any:
    if doc is None:
        doc = _parse(data)
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


# -- as sent ---------------------------------------------------------------------------------------
#: A value no sender can guess: put in place of a member's value to prove where its text is
#: (:func:`_member_text`)
_SENTINEL = "reachwatch-" + secrets.token_hex(16)
_SENTINEL_JSON = orjson.dumps(_SENTINEL)
_SPACE = b" \t\r\n"
_COLON = 58
_COMMA = 44
_BACKSLASH = 92
#: Places tried for a member's value (the first ``"key":`` is nearly always it)
_TRIES = 4


def load_as_sent(data: bytes | memoryview) -> Any:
    """One measurement as :func:`load` gives it, but ``test_keys`` as the bytes of its text as sent
    (``bytes``, which no JSON value parses to): neither minified nor written back, so ~10 us less
    for a median measurement and the probe's own numbers and escapes kept. The whole line is still
    validated by simdjson and the other members parsed by orjson. Text whose layout shows (new
    lines, ``": "``: :func:`_compact`), and anything :func:`_member_text` cannot place, is loaded
    as :func:`load` loads it (``test_keys`` minified), so that whitespace alone does not make a
    measurement another. Scrubbing then needs the text's escapes undone where they could hide an
    address: :func:`hides_address`."""
    raw = data if type(data) is bytes else bytes(data)
    doc = _parse(raw)
    if type(doc) is simdjson.Object:
        found = _member_text(raw, doc, "test_keys")
        if found is not None and found[1][:1] == b"{" and _compact(found[1]):
            m, text = found
            m["test_keys"] = text
            return m
    return _load(raw, _top, doc)


def load_submission_as_sent(body: bytes | memoryview) -> Any:
    """An OONI collector submission, its content as :func:`load_as_sent` gives a measurement (its
    text cut from the body), so that a measurement has the same identity posted alone or in a batch."""
    raw = body if type(body) is bytes else bytes(body)
    doc = _parse(raw)
    if type(doc) is simdjson.Object:
        found = _member_text(raw, doc, "content")
        if found is not None and found[1][:1] == b"{":
            doc = None  # the thread's parser reads the content next: no proxy of it may live on
            submission, text = found
            submission["content"] = load_as_sent(text)
            return submission
    return _load(raw, _submission, doc)


def _member_text(data: bytes, doc: Any, key: str) -> tuple[dict[str, Any], bytes] | None:
    """The other members of the object ``data`` (``doc`` parsed) as Python values, and the text of
    member ``key``'s value; None if the text cannot be placed so (the key spelt with escapes or
    repeated, the members after it laid out otherwise than orjson writes them...).

    The value's text ends where the members after it begin: the object's last ``}``, or the text of
    those members exactly as orjson writes them (``,"test_name":"web_connectivity",...}``: OONI's
    keys are in alphabetical order, so few and short), which the line must end with, so that no
    string can run across that cut. It starts after a ``"key":``, the first of up to :data:`_TRIES`
    that proves right: orjson parses the object with the text replaced by an unguessable string
    (:data:`_SENTINEL`), and if the object then has that string as ``key``'s value and as many
    members as the original, the text was exactly the value (a cut inside a nested object would not
    parse or would hold the sentinel elsewhere; a longer one would have swallowed members)."""
    keys = list(doc.keys())
    if key not in keys:
        return None
    after = keys.index(key) + 1
    tail = len(data)
    while tail > 0 and data[tail - 1] in _SPACE:
        tail -= 1
    if after == len(keys):
        end = tail - 1 if data[tail - 1 : tail] == b"}" else -1
    else:
        try:
            following = orjson.dumps({k: _value(_member(doc, k)) for k in keys[after:]})
        except (KeyError, TypeError):  # a key pysimdjson cannot look up (one holding a NUL)
            return None
        end = tail - len(following) if data.endswith(following[1:], 0, tail) else -1
        if end < 0 or data[end] != _COMMA:
            return None
    name = orjson.dumps(key)
    length = len(data)
    start = data.find(name)
    tries = 0
    while 0 <= start < end and tries < _TRIES:
        tries += 1
        j = start + len(name)
        while j < length and data[j] in _SPACE:
            j += 1
        if j < length and data[j] == _COLON:
            j += 1
            while j < length and data[j] in _SPACE:
                j += 1
            if j < end:
                try:
                    rest = orjson.loads(data[:j] + _SENTINEL_JSON + data[end:])
                except orjson.JSONDecodeError:
                    rest = None
                if type(rest) is dict and rest.get(key) == _SENTINEL and len(rest) == len(keys):
                    return rest, data[j:end].rstrip(_SPACE)
        start = data.find(name, start + 1)
    return None


def _compact(text: bytes) -> bool:
    """Whether ``text``, a valid JSON object, shows no layout: no new line, tab or carriage return
    (never raw inside a string), no space around the first key and its colon (``json.dumps``
    without ``separators`` puts one after every colon, ``indent`` a new line before every key: the
    first key tells). Layout of other kinds is kept as sent."""
    if b"\n" in text or b"\r" in text or b"\t" in text:
        return False
    if text[1:2] != b'"':
        return text[1:2] == b"}"
    end = text.find(b'"', 2)
    while end > 0:  # the first key's closing quote: one not escaped
        slashes = 0
        while text[end - 1 - slashes] == _BACKSLASH:
            slashes += 1
        if slashes % 2 == 0:
            return text[end + 1 : end + 2] == b":" and text[end + 2 : end + 3] != b" "
        end = text.find(b'"', end + 1)
    return False


#: An escape that may spell part of an address or of its PTR name: ``\\u00XX`` for ``%-.:``, a
#: digit or a letter. Go's encoder, which OONI probes use, escapes ``<``, ``>``, ``&`` and control
#: characters, none of them; others escape ``/`` or ``=``, which no spelling has (the scrubber
#: reads base64 values with their slashes escaped or not).
_HIDING = re.compile(rb"\\u00(?:2[5dDeE]|3[0-9aA]|4[1-9a-fA-F]|5[0-9aA]|6[1-9a-fA-F]|7[0-9aA])")


def hides_address(text: bytes) -> bool:
    """Whether ``test_keys`` as sent (:func:`load_as_sent`) must be minified before scrubbing, which
    replaces an address's spellings as bytes and so must see them unescaped."""
    return b"\\" in text and _HIDING.search(text) is not None


def minified_text(text: bytes) -> orjson.Fragment:
    """``test_keys`` as sent, minified as :func:`load` gives it (its escapes undone)."""
    doc = _parse(text)
    if type(doc) is not simdjson.Object:  # load_as_sent gave valid JSON: an object
        return orjson.Fragment(text)
    return orjson.Fragment(_mini(doc))
