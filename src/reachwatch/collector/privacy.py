"""Scrubbing: the probe's own addresses are replaced by ``[scrubbed]`` in every string.

Works on orjson's serialisation of the parsed measurement, never on the request bytes: parsing
undoes every JSON escape (``1\\u002e2.3.4`` is ``1.2.3.4`` once parsed), and orjson writes the
digits, dots, hex letters and colons of an address as themselves, so one byte replacement per
spelling reaches every string (keys, bodies, headers, TLS fields, failure strings) at any depth.
Plain substring replacement errs on the side of scrubbing (``1.2.3.4`` inside ``11.2.3.45``); it is
also several times faster than one compiled regex (word boundaries or not) on CPython's ``re``.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from typing import Any

import orjson

SCRUBBED = b"[scrubbed]"
LOCAL = "127.0.0.1"


def variants(address: str) -> set[bytes]:
    """The spellings of one address worth replacing (IPv6: compressed, exploded, upper case)."""
    return set(_variants(address))


@functools.lru_cache(maxsize=4096)  # a batch repeats its submitter and probe_ip on every line
def _variants(address: str) -> frozenset[bytes]:
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return frozenset({address.encode()}) if len(address) >= 7 else frozenset()
    if ip.is_loopback or ip.is_unspecified:
        return frozenset()
    out = {str(ip).encode()}
    if isinstance(ip, ipaddress.IPv6Address):
        out |= {ip.exploded.encode(), str(ip).upper().encode(), ip.exploded.upper().encode()}
        if ip.ipv4_mapped is not None:
            out |= _variants(str(ip.ipv4_mapped))
    return frozenset(out)


class Scrubber:
    """Replaces the spellings of some addresses in serialised JSON and in column values."""

    __slots__ = ("needles",)

    def __init__(self, addresses: Iterable[str]) -> None:
        needles: set[bytes] = set()
        for address in addresses:
            if address:
                needles |= _variants(address)
        # longest first so an exploded IPv6 form is not half-replaced by a shorter spelling
        self.needles = tuple(sorted(needles, key=len, reverse=True))

    def __bool__(self) -> bool:
        return bool(self.needles)

    def json(self, data: bytes) -> bytes:
        """``data`` (orjson output) with every spelling replaced; ``data`` itself when none occurs."""
        for needle in self.needles:
            if needle in data:
                data = data.replace(needle, SCRUBBED)
        return data

    def text(self, value: str | None) -> str | None:
        """A column value (input, network name...) scrubbed like the stored JSON."""
        if value is None or not self.needles:
            return value
        data = value.encode()
        scrubbed = self.json(data)
        return value if scrubbed is data else scrubbed.decode()


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
