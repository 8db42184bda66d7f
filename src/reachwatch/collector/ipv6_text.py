"""An IPv6 address found in text however it is written: any valid compression, padding or case.

:mod:`reachwatch.collector.privacy` lists the usual spellings of the probe's addresses; an IPv6
address has more valid spellings than a list can hold (``2001:db8:0::1``, a run of zeros
compressed elsewhere than the longest; ``2001:0db8::0001``; ``2001:Db8::1``). Every one holds the
address's first group that is not zero (:func:`first_group`), so where that group is, the text
around it is read as an address and compared (:func:`written_otherwise`), its colons as they are
or written as dashes (``2001-db8-0--1.ipv6.example``, as host names spell them). An IPv4 address
embedded in IPv6 (``::ffff:7f00:102``) is read so too, from the hex group of its own that every
spelling holds (:func:`read_around`). Compiled with mypyc (``compiled.txt``), as the scrubbing
that calls it.
"""

from __future__ import annotations

import ipaddress


def first_group(ip: ipaddress.IPv6Address) -> bytes:
    """The first group of ``ip`` that is not zero, in lower case without leading zeros: every
    spelling of ``ip`` holds it (a global address begins with it)."""
    for group in ip.exploded.split(":"):
        if int(group, 16):
            return f"{int(group, 16):x}".encode()
    return b""


_IPV6_TEXT = frozenset(b"0123456789abcdefABCDEF:.")
#: the same with dashes, which host names write for colons
_DASHED_TEXT = frozenset(b"0123456789abcdefABCDEF:.-")
_COLON = 58
_DASH = 45
_DOT = 46
_ZERO = 48
_BACKSLASH = 92
_U = 117


def written_otherwise(
    text: bytes, folded: bytes, anchor: bytes, values: frozenset[int], at: int
) -> list[tuple[int, int]]:
    """Where in ``text`` one of the addresses ``values`` is, however written: at each place
    ``anchor`` is in ``folded`` (``text`` in lower case, dashes as dots; the first at ``at``),
    the text around it is read (:func:`read_around`), and the search goes on after that text, so
    that a long run of hex digits and colons is read once. Spans (start, end) of ``text``.

    Each text around is read once (a measurement repeats its addresses: 500,000 copies of one
    held the event loop 5 s, read one by one: an outside check), by the run of hex digits, colons,
    dots and dashes it is in and the two bytes before (a JSON escape's); past :data:`MAX_READ`
    different ones, :class:`TooManySpellings`."""
    found: list[tuple[int, int]] = []
    read: dict[tuple[bytes, int], tuple[int, int, int]] = {}  # relative to the run's start
    size = len(text)
    while at >= 0:
        start, stop = at, at + len(anchor)
        while start > 0 and text[start - 1] in _DASHED_TEXT:
            start -= 1
        while stop < size and text[stop] in _DASHED_TEXT:
            stop += 1
        lo = max(0, start - 2)  # what read_around reads of the text: no more (see _escaped)
        key = (text[lo:stop], at - lo)
        known = read.get(key)
        if known is None:
            if len(read) >= MAX_READ:
                raise TooManySpellings(MAX_READ)
            first, last, end = read_around(text, at, at + len(anchor), values)
            known = (first - lo, last - lo, end - lo) if first >= 0 else (-1, -1, end - lo)
            read[key] = known
        if known[0] >= 0:
            found.append((known[0] + lo, known[1] + lo))
        at = folded.find(anchor, known[2] + lo)
    return found


#: Different texts around an address's anchor read as addresses (~4 us each) at most: a
#: measurement of the address's own network holds tens
MAX_READ = 1000


class TooManySpellings(ValueError):
    """More than :data:`MAX_READ` different texts around an IPv6 address's anchor: the text
    cannot be scrubbed in bounded time, so it is refused."""


def read_around(text: bytes, at: int, end: int, values: frozenset[int]) -> tuple[int, int, int]:
    """(start, end) of the text around ``text[at:end]`` that is one of the addresses ``values``,
    or (-1, -1), and where the text read ends. The run of hex digits, colons and dots around it
    is read as an address, from its start, after a JSON escape's hex digits (the run may begin
    with them: ``\\u00010:0:0:0:0:ffff:a14:1e28``, ``\\fe80::5``), from a group or a ``::`` in it
    before ``at`` (``a::ffff:a14:1e28``), from the zeros before ``at`` or from ``at``
    (``\\u00012001:db8:0::5``), to its end or to a dot after its last colon (a host
    name may follow: ``2001:db8:0::5.example``); else the run with dashes, read with colons for
    dashes (``2001-db8-0--5.ipv6.example``)."""
    size = len(text)
    start = at
    while start > 0 and text[start - 1] in _IPV6_TEXT:
        start -= 1
    stop = end
    while stop < size and text[stop] in _IPV6_TEXT:
        stop += 1
    if text.count(b":", start, stop) >= 2:
        first, last = _ipv6_span(text, start, at, stop, values, _escaped(text, start))
        if first >= 0:
            return first, last, stop
    if (start > 0 and text[start - 1] == _DASH) or (stop < size and text[stop] == _DASH):
        while start > 0 and text[start - 1] in _DASHED_TEXT:
            start -= 1
        while stop < size and text[stop] in _DASHED_TEXT:
            stop += 1
        dashed = text[start:stop].replace(b"-", b":")
        if dashed.count(b":") >= 2:
            first, last = _ipv6_span(dashed, 0, at - start, stop - start, values, _escaped(text, start))
            if first >= 0:
                return first + start, last + start, stop
    return -1, -1, stop


def _escaped(text: bytes, start: int) -> int:
    """How many of the bytes from ``start`` may be the hex digits of a JSON escape: 4 after
    ``\\u`` (``\\u0001``), 1 after a backslash (``\\f``, ``\\b``), else 0."""
    if start >= 2 and text[start - 1] == _U and text[start - 2] == _BACKSLASH:
        return 4
    if start >= 1 and text[start - 1] == _BACKSLASH:
        return 1
    return 0


#: the longest text of an IPv6 address (``0000:0000:0000:0000:0000:ffff:255.255.255.255``)
_LONGEST = 45


def _ipv6_span(
    data: bytes, start: int, at: int, end: int, values: frozenset[int], escaped: int
) -> tuple[int, int]:
    """(start, end) of the text in ``data[start:end]`` that names one of the addresses
    ``values`` (see :func:`read_around`), or (-1, -1); its first ``escaped`` bytes may be the
    hex digits of a JSON escape (:func:`_escaped`)."""
    padded = at
    while padded > start and data[padded - 1] == _ZERO:
        padded -= 1
    while end > at and data[end - 1] == _DOT:
        end -= 1
    if end - 2 >= at and data[end - 1] == _COLON and data[end - 2] != _COLON:
        end -= 1
    last_colon = data.rfind(b":", at, end)
    dot = data.find(b".", last_colon, end) if last_colon >= 0 else -1
    # from the start, after the hex digits of a JSON escape it begins with, where a group or a
    # run of colons begins before ``at``, after the zeros before ``at``, at ``at``
    firsts = [start, start + escaped] if escaped else [start]
    for i in range(max(start + 1, at - _LONGEST), at):
        if (data[i] == _COLON) != (data[i - 1] == _COLON):
            firsts.append(i)
    firsts += (padded, at)
    for first in dict.fromkeys(firsts):
        for last in (end, dot) if dot > 0 else (end,):
            try:
                if int(ipaddress.IPv6Address(data[first:last].decode())) in values:
                    return first, last
            except ValueError:
                continue
    return -1, -1
