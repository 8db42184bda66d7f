"""Scrubbing: the probe's own addresses are replaced by ``[scrubbed]`` in every string.

Works on the parsed measurement written back (by orjson; its ``test_keys`` minified by simdjson,
:mod:`reachwatch.collector.measurement_json`), never on the request bytes: parsing undoes every
JSON escape (``1\\u002e2.3.4`` is ``1.2.3.4`` once parsed), and both write the digits, dots, hex
letters and colons of an address as themselves, so one byte replacement per
spelling reaches every string (keys, bodies, headers, TLS fields, failure strings) at any depth.
Plain substring replacement errs on the side of scrubbing (``1.2.3.4`` inside ``11.2.3.45``); it is
also several times faster than one compiled regex (word boundaries or not) on CPython's ``re``.

A body that is not UTF-8 (a page in windows-1251 or Shift JIS, say) is written by OONI probes as
``{"data": <base64>, "format": "base64"}``, where no spelling of an address appears as such: such
values are decoded, scrubbed (the text spellings, in ASCII-compatible encodings and in UTF-16) and
encoded again. An IPv6 address written in any other valid form (``2001:db8:0::1``, a run of zeros
compressed elsewhere than the longest, groups padded unevenly, mixed case) is found by its first
group and read (:func:`~reachwatch.collector.ipv6_text.written_otherwise`). An address only in binary form (four bytes of a
certificate's SAN) is not sought; nor are other separators than dots, dashes and colons,
percent-encoded, text in UTF-32, and base64 outside OONI's ``{"data", "format"}`` object. A
probe_ip or submitter naming several addresses (``192.0.2.1, 192.0.2.2``) or a network
(``192.0.2.55/32``) has each address scrubbed.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import re
from collections.abc import Iterable
from typing import Any

import orjson

from reachwatch.collector.ipv6_text import first_group, written_otherwise

SCRUBBED = b"[scrubbed]"
LOCAL = "127.0.0.1"
#: addresses that name no one and are never scrubbed: the placeholder every probe writes as its
#: ``probe_ip`` (scrubbing it would rewrite the measurement's own copies of it) and its IPv6 twin,
#: whose three bytes ``::1`` sit inside countless other IPv6 addresses. Every other loopback address
#: (``127.0.1.7``, a probe's or a submitter's on a shared host) is scrubbed like any address.
_NOT_SCRUBBED = frozenset({ipaddress.ip_address(LOCAL), ipaddress.ip_address("::1")})


def variants(address: str) -> set[bytes]:
    """The spellings of one address worth replacing (see :func:`_variants`)."""
    return set(_variants(address))


@functools.lru_cache(maxsize=4096)  # a batch repeats its submitter and probe_ip on every line
def _variants(address: str) -> frozenset[bytes]:
    """As written; IPv4 with dashes (host names), both reversed (``55.2.0.192.in-addr.arpa``,
    ``55-2-0-192.dyn.example.net``: reverse DNS names), zero-padded (``192.000.002.055``),
    percent-encoded dots, and as an IPv4-mapped IPv6 address in hex (``::ffff:c000:237``, each
    IPv6 spelling); IPv6 compressed, exploded and uncompressed, either case, colons as they are,
    percent-encoded or as dashes (``2001-db8--1.ipv6.example``), its PTR name; an IPv4-mapped
    address's IPv4 spellings too."""
    ip = _address(address)
    if ip is None or ip.is_unspecified or ip in _NOT_SCRUBBED:
        # not an address (a hostname, a JSON fragment...): replacing its bytes could reach the
        # measurement's own keys and values (``web_connectivity``, ``"test_keys"``) and break the JSON
        return frozenset()
    if isinstance(ip, ipaddress.IPv4Address):
        octets = str(ip).split(".")
        out = set()
        for parts in (octets, octets[::-1]):  # the reversed ones cover the PTR name
            for sep in (".", "-", "%2E", "%2e"):
                out.add(sep.join(parts).encode())
        out.add(".".join(f"{int(o):03d}" for o in octets).encode())
        # the same address mapped into IPv6 and written in hex
        return frozenset(out | _ipv6_spellings(ipaddress.IPv6Address(f"::ffff:{ip}")))
    out = _ipv6_spellings(ip) | {ip.reverse_pointer.encode()}
    if ip.ipv4_mapped is not None:
        out |= _variants(str(ip.ipv4_mapped))
    return frozenset(out)


def _ipv6_spellings(ip: ipaddress.IPv6Address) -> set[bytes]:
    groups = ip.exploded.split(":")
    # uncompressed without leading zeros (``2001:db8:0:0:0:0:0:1``), as Java and some logs write
    # it; the compressed form with each group's leading zeros kept (``::ffff:0a14:1e28``)
    plain = ":".join(f"{int(group, 16):x}" for group in groups)
    padded = str(ip) if ip.ipv4_mapped is None else "::ffff:" + ":".join(groups[-2:])
    out: set[bytes] = set()
    for spelling in {str(ip), ip.exploded, plain, padded}:
        for case in (spelling, spelling.upper()):
            # and percent-encoded, as in a URL's query (``?ip=2001%3Adb8%3A%3A1``)
            out |= {case.encode(), case.replace(":", "%3A").encode(), case.replace(":", "%3a").encode()}
    for case in (str(ip), str(ip).upper()):
        out.add(case.replace(":", "-").encode())  # ipv6-literal host names
    return out


#: what may surround an address in a probe_ip: brackets, a port, an IPv6 zone (``fe80::1%eth0``)
_ADDRESS = re.compile(r"^\[?([0-9A-Fa-f:.]+)(?:%[^\]]*)?\]?(?::[0-9]{1,5})?$")


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address ``text`` names, bare, in brackets, with a port or a zone; None if none."""
    match = _ADDRESS.match(text.strip())
    if match is None:
        return None
    host = match.group(1)
    candidates = [host]
    if host.count(":") == 1:  # 192.0.2.1:443
        candidates.append(host.split(":")[0])
    for candidate in candidates:
        try:
            return ipaddress.ip_address(candidate)
        except ValueError:
            continue
    return None


#: A base64 value as OONI writes a body that is not UTF-8: either key order, in any layout, its
#: slashes escaped or not (``\/``), so that any serialised JSON is scrubbed, not only the minified
_B64 = rb'"([A-Za-z0-9+/\\]*={0,2})"'
_BASE64_VALUE = re.compile(
    rb'\{\s*"data"\s*:\s*' + _B64 + rb'\s*,\s*"format"\s*:\s*"base64"\s*\}'
    rb'|\{\s*"format"\s*:\s*"base64"\s*,\s*"data"\s*:\s*' + _B64 + rb"\s*\}"
)
_BASE64_MARK = b'"base64"'
#: how a decoded value may spell an address: ASCII (the same bytes in UTF-8, windows-1251, Shift JIS...)
#: or UTF-16 either way
_CODECS = ("ascii", "utf-16-le", "utf-16-be")


#: what separates the addresses of a probe_ip that names several (``192.0.2.1, 192.0.2.2``)
_LIST = re.compile(r"[,;\s]+")
#: a network's prefix length after an address (``192.0.2.55/32``)
_PREFIX = re.compile(r"/[0-9]{1,3}$")


def _named(text: str) -> list[str]:
    """The addresses a submitter or probe_ip text may name: itself, or each of a list, a prefix
    length dropped."""
    return [_PREFIX.sub("", part) for part in _LIST.split(text.strip()) if part]


def _fold(data: bytes) -> bytes:
    """Dashes as dots and letters in lower case: what the spellings of an address differ by.
    (``lower`` and ``replace`` run at ~2 GB/s, ``bytes.translate`` at ~0.7: 5 against 9 us for a
    median measurement.)"""
    return data.lower().replace(b"-", b".")


class Scrubber:
    """Replaces the spellings of some addresses in serialised JSON and in column values."""

    __slots__ = ("binary", "detect", "detect_v6", "hex", "needles", "percent", "v6")

    def __init__(self, addresses: Iterable[str]) -> None:
        spellings: set[bytes] = set()
        v6: dict[int, bytes] = {}
        for address in addresses:
            for named in _named(address) if address else ():
                found = _variants(named)
                spellings |= found
                ip = _address(named)
                if found and isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
                    v6[int(ip)] = first_group(ip)
        #: (first group, address) of each IPv6 address, for the spellings not listed
        #: (:func:`~reachwatch.collector.ipv6_text.written_otherwise`)
        self.v6 = tuple((group, value) for value, group in v6.items())
        # longest first so an exploded IPv6 form is not half-replaced by a shorter spelling
        every = sorted(spellings, key=len, reverse=True)
        # each spelling is sought only where a part of it is: one search for that part, where each
        # spelling sought costs one search over the whole measurement (~0.5-2 us for a median one)
        #: those holding ``ffff`` (an IPv4 address mapped into IPv6, in hex), either case
        self.hex = tuple(n for n in every if b"ffff" in n or b"FFFF" in n)
        #: the other percent-encoded ones, sought only where a ``%`` is
        self.percent = tuple(n for n in every if b"%" in n and n not in self.hex)
        self.needles = tuple(n for n in every if b"%" not in n and n not in self.hex)
        #: the plain spellings with dashes as dots and hex in lower case, sought in the data so
        #: folded (:func:`_fold`): one search finds a spelling in any of its separators and cases,
        #: so a measurement holding none (nearly all) costs a third of the searches
        folded = tuple(dict.fromkeys(_fold(n) for n in self.needles))
        groups = [group for group, _ in self.v6]
        #: those holding an IPv6 address's first group, sought only where one of those is
        self.detect_v6 = tuple(n for n in folded if any(group in n for group in groups))
        self.detect = tuple(n for n in folded if n not in self.detect_v6)
        #: (spellings, replacement) for decoded base64 values, in each of :data:`_CODECS`
        self.binary = tuple(
            (tuple(n.decode().encode(codec) for n in every), SCRUBBED.decode().encode(codec))
            for codec in _CODECS
        )

    def __bool__(self) -> bool:
        return bool(self.needles)

    def json(self, data: bytes) -> bytes:
        """``data`` (serialised JSON) with every spelling replaced, base64 values included, and no
        JSON escape cut (:func:`_escape_end`); ``data`` itself when none occurs."""
        return self._scrubbed(data, True)

    def _scrubbed(self, data: bytes, json: bool) -> bytes:
        if not self.needles:
            return data
        folded = _fold(data)
        v6 = tuple(address for address in self.v6 if address[0] in folded) if self.v6 else ()
        if v6:  # an IPv6 address's first group: it may be there, in any spelling
            others = written_otherwise(data, folded, v6)
            if others:  # replaced first: the searches below read ``folded`` only to detect
                data = _replaced(data, tuple(sorted(others, key=len, reverse=True)), SCRUBBED, json)
        if self.hex and b"ffff" in folded:
            data = _replaced(data, self.hex, SCRUBBED, json)
        if self.percent and b"%" in data and (b"%2e" in folded or b"%3a" in folded):  # memchr first
            data = _replaced(data, self.percent, SCRUBBED, json)
        if any(n in folded for n in self.detect) or (v6 and any(n in folded for n in self.detect_v6)):
            data = _replaced(data, self.needles, SCRUBBED, json)
        if json and _BASE64_MARK in data:
            data = self._base64_values(data)
        return data

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
        """A decoded base64 value with every spelling replaced, in each of :data:`_CODECS`, an
        IPv6 address written otherwise included (:func:`~reachwatch.collector.ipv6_text.written_otherwise`, on the text read
        in each codec); ``decoded`` itself when none occurs."""
        scrubbed = decoded
        for needles, replacement in self.binary:
            scrubbed = _replaced(scrubbed, needles, replacement)
        if not self.v6:
            return scrubbed
        for codec in _CODECS:
            replacement = SCRUBBED.decode().encode(codec)
            # the value read in this codec, as ASCII-compatible bytes (UTF-16 from either byte)
            if codec == "ascii":
                views = [scrubbed]
            else:
                views = [
                    scrubbed[skip:].decode(codec, "replace").encode("utf-8", "replace") for skip in (0, 1)
                ]
            found: set[bytes] = set()
            for view in views:
                found |= written_otherwise(view, _fold(view), self.v6)
            if found:
                spellings = tuple(sorted((f.decode().encode(codec) for f in found), key=len, reverse=True))
                scrubbed = _replaced(scrubbed, spellings, replacement)
        return scrubbed

    def text(self, value: str | None) -> str | None:
        """A column value (input, network name...) scrubbed like the stored JSON."""
        if value is None or not self.needles:
            return value
        data = value.encode()
        scrubbed = self._scrubbed(data, False)
        return value if scrubbed is data else scrubbed.decode()


def _replaced(data: bytes, needles: tuple[bytes, ...], replacement: bytes, json: bool = False) -> bytes:
    """``data`` with each needle replaced, in order; ``data`` itself when none occurs. In ``json``
    (serialised JSON), an escape a needle begins in is kept whole (:func:`_escape_end`)."""
    for needle in needles:
        if needle in data:
            if json and b"\\" in data:
                data = _replaced_around_escapes(data, needle, replacement)
            else:
                data = data.replace(needle, replacement)
    return data


def _replaced_around_escapes(data: bytes, needle: bytes, replacement: bytes) -> bytes:
    """``data.replace(needle, replacement)``, but where an occurrence begins inside a JSON escape
    the escape is kept and only the rest of the occurrence replaced: ``\\u000127.0.5.9`` (a
    control character, then ``27.0.5.9``) becomes ``\\u0001[scrubbed]``, valid JSON with no
    address in its bytes (erring towards scrubbing, as everywhere here)."""
    parts: list[bytes] = []
    done = 0
    at = data.find(needle)
    while at >= 0:
        end = at + len(needle)
        cut = _escape_end(data, at)
        keep = at if cut < 0 else cut
        if keep < end:
            parts += (data[done:keep], replacement)
            done = end
            at = data.find(needle, end)
        else:
            at = data.find(needle, at + 1)
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
