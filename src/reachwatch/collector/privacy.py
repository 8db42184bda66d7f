"""Scrubbing: the probe's own addresses are replaced by ``[scrubbed]`` in every string.

Works on the parsed measurement written back (by orjson; its ``test_keys`` as its text made compact,
:mod:`reachwatch.collector.json_text`), never on the request bytes: parsing undoes every
JSON escape (``1\\u002e2.3.4`` is ``1.2.3.4`` once parsed), and both write the digits, dots, hex
letters and colons of an address as themselves, so a search of the serialised text reaches every
string (keys, bodies, headers, TLS fields, failure strings) at any depth.

The text is searched *folded* (:func:`~reachwatch.collector.address_spellings.fold`: lower case, dashes as dots, the same length) and,
where it holds ``%2e`` or ``%3a`` in either case, with those decoded (:func:`_percent_decoded`);
each place found is replaced at the same place of the text as written (:func:`_replaced`), so a
spelling is found in any mix of cases, of dashes and dots, of percent-encoded and plain
separators (``::FFff:7F00:102``, ``127%2e0.1%2E2``, ``2001%3adb8%3A%3a5``). What is sought, for
each address (:func:`~reachwatch.collector.address_spellings.searches`):

- IPv4 ``127.0.1.2``: as written (dots or dashes, ``ec2-127-0-1-2.example``), each octet
  zero-padded or not (``127.000.001.002``, ``127.0.1.002``: one regex with a literal prefix);
  reversed, as PTR and reverse DNS names write it (``2.1.0.127.in-addr.arpa``,
  ``2-1-0-127.pool.example``; not padded); embedded
  in an IPv6 address, its 32 bits last, in any valid spelling of it, hex or dotted: mapped
  (``::ffff:7f00:102``, ``0:0:0:0:0:ffff:7f00:0102``), compatible (``::7f00:102``) or under
  NAT64's well-known prefix (``64:ff9b::7f00:102``), read where the longer of its two hex
  groups is (``7f00``).
- IPv6 ``2001:db8::5``: in any valid spelling (compression anywhere, groups padded or not, any
  case), its colons as they are, percent-encoded or as dashes (``2001-db8-0--5.ipv6.example``),
  read where its first group is (:mod:`reachwatch.collector.ipv6_text`); its PTR name
  (``...8.b.d.0.1.0.0.2.ip6.arpa``).

Replacement errs on the side of scrubbing: a spelling inside a longer one goes (``1.2.3.4`` in
``11.2.3.45``), and a JSON escape a spelling begins in is kept whole (:func:`_escape_end`).

A body that is not UTF-8 (a page in windows-1251 or Shift JIS, say) is written by OONI probes as
``{"data": <base64>, "format": "base64"}``, where no spelling of an address appears as such: such
values are decoded, scrubbed as ASCII-compatible bytes and as UTF-16 either way (sought in every
other byte first: the characters of an address in UTF-16), and encoded again. A probe_ip or
submitter naming several addresses (``192.0.2.1, 192.0.2.2``) or a network (``192.0.2.55/32``)
has each address scrubbed.

Not sought: an address as a number (``2130706690``, ``0x7f000102``: replacing a JSON number
breaks the JSON, and would reach unrelated numbers, an ASN, a byte count, a time), in octal
(``0177.0.1.2``), with other separators (``127_0_1_2``, full-width dots), IPv6 hex without
colons (``20010db8...0005``), an IPv4 address under another IPv6 prefix (6to4, Teredo, a NAT64
prefix of a network's own), reversed and zero-padded, in binary form (four bytes of a
certificate's SAN), text in UTF-32, base64 outside OONI's ``{"data", "format"}`` object.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import re
from collections.abc import Iterable
from typing import Any

import orjson

from reachwatch.collector.address_spellings import LOCAL, addresses_in, searches
from reachwatch.collector.ipv6_text import read_around, written_otherwise

SCRUBBED = b"[scrubbed]"
#: A base64 value as OONI writes a body that is not UTF-8: either key order, in any layout, its
#: slashes escaped or not (``\/``), so that any serialised JSON is scrubbed, not only the minified
_B64 = rb'"([A-Za-z0-9+/\\]*={0,2})"'
_BASE64_VALUE = re.compile(
    rb'\{\s*"data"\s*:\s*' + _B64 + rb'\s*,\s*"format"\s*:\s*"base64"\s*\}'
    rb'|\{\s*"format"\s*:\s*"base64"\s*,\s*"data"\s*:\s*' + _B64 + rb"\s*\}"
)
_BASE64_MARK = b'"base64"'


#: a dot or a colon percent-encoded, once in lower case (``%2E``, ``%3a``)
_PERCENT = re.compile(rb"%(?:2e|3a)")
_ZERO = 48
_TWO = 50


def _percent_decoded(lowered: bytes) -> tuple[bytes, list[int]]:
    """``lowered`` with each ``%2e`` a dot and each ``%3a`` a colon, and where in it those are
    (ascending), to find a place of ``lowered`` again (:func:`_unmapped`)."""
    parts: list[bytes] = []
    marks: list[int] = []
    done = 0
    size = 0
    for match in _PERCENT.finditer(lowered):
        at = match.start()
        parts.append(lowered[done:at])
        size += at - done
        marks.append(size)
        parts.append(b"." if lowered[at + 1] == _TWO else b":")
        size += 1
        done = at + 3
    parts.append(lowered[done:])
    return b"".join(parts), marks


def _unmapped(start: int, end: int, marks: list[int]) -> tuple[int, int]:
    """The span of the text as written of ``[start, end)`` of its percent-decoded form, whose
    decoded characters are at ``marks`` (:func:`_percent_decoded`): each before it was 3 bytes."""
    before = bisect.bisect_left(marks, start)
    last = bisect.bisect_left(marks, end - 1)
    decoded = last < len(marks) and marks[last] == end - 1
    return start + 2 * before, end - 1 + 2 * last + (3 if decoded else 1)


class Scrubber:
    """Replaces the spellings of some addresses in serialised JSON and in column values."""

    __slots__ = ("anchored", "needles", "patterns")

    def __init__(self, addresses: Iterable[str]) -> None:
        patterns: dict[bytes, tuple[re.Pattern[bytes], int, frozenset[int]]] = {}
        needles: set[bytes] = set()
        anchored: dict[bytes, tuple[set[bytes], set[int]]] = {}
        for address in addresses:
            for named in addresses_in(address) if address else ():
                found = searches(named)
                for pattern in found[0]:
                    patterns[pattern[0].pattern] = pattern
                needles |= found[1]
                for anchor, spellings, values in found[2]:
                    both = anchored.setdefault(anchor, (set(), set()))
                    both[0].update(spellings)
                    both[1].update(values)
        #: (pattern, zeros, addresses) of each IPv4 address (:func:`~reachwatch.collector.address_spellings.searches`)
        self.patterns = tuple(patterns.values())
        #: the folded spellings sought everywhere
        self.needles = tuple(sorted(needles))
        #: (anchor, folded spellings, addresses) sought where the anchor is
        self.anchored = tuple(
            (anchor, tuple(sorted(spellings)), frozenset(values))
            for anchor, (spellings, values) in sorted(anchored.items())
        )

    def __bool__(self) -> bool:
        return bool(self.patterns or self.needles or self.anchored)

    def json(self, data: bytes) -> bytes:
        """``data`` (serialised JSON) with every spelling replaced, base64 values included, and no
        JSON escape cut (:func:`_escape_end`); ``data`` itself when none occurs."""
        return self._scrubbed(data, True)

    def _scrubbed(self, data: bytes, json: bool) -> bytes:
        if not self:
            return data
        spans = self._spans(data)
        if spans:
            data = _replaced(data, spans, SCRUBBED, json)
        if json and _BASE64_MARK in data:
            data = self._base64_values(data)
        return data

    def _spans(self, data: bytes) -> list[tuple[int, int]]:
        """Where in ``data`` a spelling is, in any case and with dashes or dots, percent-encoded or
        not (each of its dots and colons): (start, end), unordered, overlapping or not. Sought in
        ``data`` folded (:func:`~reachwatch.collector.address_spellings.fold`) and percent-decoded where it holds ``%2e`` or ``%3a``."""
        lowered = data.lower()
        marks: list[int] = []
        if b"%" in lowered and (b"%2e" in lowered or b"%3a" in lowered):  # memchr first
            lowered, marks = _percent_decoded(lowered)
        folded = lowered.replace(b"-", b".")
        spans: list[tuple[int, int]] = []
        for pattern, zeros, embedding in self.patterns:
            found = pattern.search(folded)  # nearly always None: no iterator made
            if found is None:
                continue
            for match in pattern.finditer(folded, found.start()):
                start, end = match.span()
                first_octet = start - zeros  # its zeros, which the pattern leaves out
                while start > first_octet and start > 0 and folded[start - 1] == _ZERO:
                    start -= 1
                spans.append((start, end))
                first, last, _ = read_around(lowered, start, end, embedding)  # ::ffff:10.20.30.40
                if first >= 0:
                    spans.append((first, last))
        for needle in self.needles:
            _occurrences(folded, needle, spans)
        for anchor, needles, values in self.anchored:
            at = folded.find(anchor)
            if at >= 0:
                for needle in needles:
                    _occurrences(folded, needle, spans)
                spans += written_otherwise(lowered, folded, anchor, values, at)
        if marks and spans:
            return [_unmapped(start, end, marks) for start, end in spans]
        return spans

    def _base64_values(self, data: bytes) -> bytes:
        """``data`` with the base64 values holding an address decoded, scrubbed, encoded again;
        ``data`` itself when none does."""
        parts: list[bytes] = []
        done = 0
        for match in _BASE64_VALUE.finditer(data):
            group = 1 if match.start(1) >= 0 else 2
            value = match.group(group).replace(b"\\/", b"/")
            padded = value + b"=" * (-len(value) % 4)  # some encoders leave the padding out
            try:
                decoded = base64.b64decode(padded, validate=True)
            except binascii.Error:
                continue
            scrubbed = self._decoded_value(decoded)
            if scrubbed is not decoded:
                encoded = base64.b64encode(scrubbed)
                parts += (
                    data[done : match.start(group)],
                    encoded if padded is value else encoded.rstrip(b"="),
                )
                done = match.end(group)
        if not parts:
            return data
        parts.append(data[done:])
        return b"".join(parts)

    def _decoded_value(self, decoded: bytes) -> bytes:
        """A decoded base64 value with every spelling replaced, as ASCII-compatible bytes and in
        UTF-16 either way (read as text from either byte, :func:`_spans` on it, and what it found
        replaced in that codec); ``decoded`` itself when none occurs."""
        spans = self._spans(decoded)
        scrubbed = _replaced(decoded, spans, SCRUBBED) if spans else decoded
        if b"\x00" not in scrubbed:  # no ASCII character in UTF-16 (a page in cp1251, say)
            return scrubbed
        # the characters of an address in UTF-16 are every other byte, from the first or the
        # second: sought there first (two slices, where decoding four ways took ~60 us for the two
        # certificates of a tor measurement, binary, many errors to replace); what else those
        # bytes hold can add places, but none of the address's is lost
        if not self._spans(scrubbed[0::2]) and not self._spans(scrubbed[1::2]):
            return scrubbed
        for codec, replacement in _UTF16:
            found: set[bytes] = set()
            for skip in (0, 1):
                view = scrubbed[skip:].decode(codec, "replace").encode("utf-8", "replace")
                found.update(view[start:end] for start, end in self._spans(view))
            if found:
                spans = []
                for text in found:
                    _occurrences(scrubbed, text.decode().encode(codec), spans)
                scrubbed = _replaced(scrubbed, spans, replacement)
        return scrubbed

    def text(self, value: str | None) -> str | None:
        """A column value (input, network name...) scrubbed like the stored JSON."""
        if value is None or not self:
            return value
        data = value.encode()
        scrubbed = self._scrubbed(data, False)
        return value if scrubbed is data else scrubbed.decode()


#: UTF-16 either way, and the replacement in it
_UTF16 = tuple((codec, SCRUBBED.decode().encode(codec)) for codec in ("utf-16-le", "utf-16-be"))


def _occurrences(data: bytes, needle: bytes, spans: list[tuple[int, int]]) -> None:
    """Each place of ``needle`` in ``data``, overlapping ones included, added to ``spans``."""
    at = data.find(needle)
    while at >= 0:
        spans.append((at, at + len(needle)))
        at = data.find(needle, at + 1)


def _replaced(data: bytes, spans: list[tuple[int, int]], replacement: bytes, json: bool = False) -> bytes:
    """``data`` with each span replaced, overlapping ones as one; ``data`` itself when none is.
    In ``json`` (serialised JSON), where a span begins inside a JSON escape the escape is kept and
    only the rest of the span replaced: ``\\u000127.0.5.9`` (a control character, then
    ``27.0.5.9``) becomes ``\\u0001[scrubbed]``, valid JSON with no address in its bytes (erring
    towards scrubbing, as everywhere here). A span holds no backslash (no spelling does), so
    none ends inside an escape."""
    escapes = json and b"\\" in data
    parts: list[bytes] = []
    done = 0
    for start, end in sorted(spans):
        if start < done:  # overlaps the one replaced before: that replacement covers it
            done = max(done, end)
            continue
        if escapes:
            cut = _escape_end(data, start)
            if cut >= 0:
                start = cut
                if start >= end:
                    continue
        parts += (data[done:start], replacement)
        done = end
    if not parts:
        return data
    parts.append(data[done:])
    return b"".join(parts)


_BACKSLASH = 92
_U = 117
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


def _escape_end(data: bytes, at: int) -> int:
    """Where the JSON escape that ``data[at]`` belongs to ends, or -1 if it belongs to none:
    ``data[at]`` may be the letter after a backslash (``\\f`` of a form feed, before ``e80::1``)
    or one of the hex digits of ``\\uXXXX`` (``\\u0001`` before ``27.0.5.9``). Every JSON
    writer escapes control characters so, and a replacement starting there wrote invalid JSON."""
    if at > 0 and data[at - 1] == _BACKSLASH and _unescaped(data, at - 1):
        return at + 1
    for digits in range(4):  # data[at] is hex digit number digits + 1 of an escape
        start = at - digits - 2
        if start < 0:
            return -1
        if data[start] == _BACKSLASH and data[start + 1] == _U and _unescaped(data, start):
            inside = all(data[i] in _HEX_DIGITS for i in range(start + 2, at))
            return start + 6 if inside else -1
    return -1


def _unescaped(data: bytes, at: int) -> bool:
    """Whether the backslash at ``data[at]`` starts an escape (is not itself escaped)."""
    run = 0
    while at - run - 1 >= 0 and data[at - run - 1] == _BACKSLASH:
        run += 1
    return run % 2 == 0


def scrub(measurement: dict[str, Any], addresses: Iterable[str]) -> dict[str, Any]:
    """The measurement with every occurrence of ``addresses`` scrubbed and probe_ip set to 127.0.0.1."""
    scrubber = Scrubber(addresses)
    measurement["probe_ip"] = LOCAL
    if not scrubber:
        return measurement
    data = orjson.dumps(measurement)
    changed = scrubber.json(data)
    if changed is data:
        return measurement
    out: dict[str, Any] = orjson.loads(changed)
    out["probe_ip"] = LOCAL
    return out
