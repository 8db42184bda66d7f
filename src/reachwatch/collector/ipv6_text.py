"""An IPv6 address found in text however it is written: any valid compression, padding or case.

:mod:`reachwatch.collector.privacy` lists the usual spellings of the probe's addresses and replaces
them byte for byte; an IPv6 address has more valid spellings than a list can hold (``2001:db8:0::1``,
a run of zeros compressed elsewhere than the longest; ``2001:0db8::0001``; ``2001:Db8::1``). Every
one holds the address's first group that is not zero (:func:`first_group`), so where that group is,
the text around it is read as an address and compared (:func:`written_otherwise`). Compiled with
mypyc (``compiled.txt``), as the scrubbing that calls it.
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
_COLON = 58
_DOT = 46
_ZERO = 48


def written_otherwise(data: bytes, folded: bytes, v6: tuple[tuple[bytes, int], ...]) -> set[bytes]:
    """The texts in ``data`` that are one of the ``v6`` addresses however written: at each place
    the address's first group is (sought in ``folded``, so in either case), the run of hex digits,
    colons and dots around it is read as an address, from its start or from the group (the run
    may begin inside a JSON escape's digits, ``\\u00012001:db8:0::5``), to its end or to a dot
    after its last colon (a host name may follow: ``2001:db8:0::5.example``)."""
    found: set[bytes] = set()
    size = len(data)
    for group, value in v6:
        #: each run read once (a measurement repeats its addresses: 500,000 copies of one took 5 s
        #: to read one by one, an outside check), by its text and where the group is in it
        read: set[tuple[bytes, int]] = set()
        at = folded.find(group)
        while at >= 0:
            start = at
            while start > 0 and data[start - 1] in _IPV6_TEXT:
                start -= 1
            end = at + len(group)
            while end < size and data[end] in _IPV6_TEXT:
                end += 1
            if data.count(b":", start, end) >= 2:
                run = (data[start:end], at - start)
                if run not in read:
                    read.add(run)
                    if len(read) > MAX_READ:
                        raise TooManySpellings(MAX_READ)
                    text = _ipv6_text(data, start, at, end, value)
                    if text:
                        found.add(text)
            at = folded.find(group, end)
    return found


#: Different texts around an address's first group read as addresses (~4 us each) at most: a
#: measurement of the address's own network holds tens
MAX_READ = 1000


class TooManySpellings(ValueError):
    """More than :data:`MAX_READ` different texts around an IPv6 address's first group: the text
    cannot be scrubbed in bounded time (each would be read, then sought), so it is refused."""


def _ipv6_text(data: bytes, start: int, at: int, end: int, value: int) -> bytes:
    """The text in ``data[start:end]`` that names the address ``value`` (see
    :func:`written_otherwise`), or empty."""
    padded = at
    while padded > start and data[padded - 1] == _ZERO:
        padded -= 1
    while end > at and data[end - 1] == _DOT:
        end -= 1
    if end - 2 >= at and data[end - 1] == _COLON and data[end - 2] != _COLON:
        end -= 1
    last_colon = data.rfind(b":", at, end)
    dot = data.find(b".", last_colon, end) if last_colon >= 0 else -1
    for first in dict.fromkeys((start, padded, at)):
        for last in (end, dot) if dot > 0 else (end,):
            try:
                if int(ipaddress.IPv6Address(data[first:last].decode())) == value:
                    return data[first:last]
            except ValueError:
                continue
    return b""
