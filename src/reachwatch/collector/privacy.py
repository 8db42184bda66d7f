"""Scrubbing: the probe's own addresses are replaced by ``[scrubbed]`` in every string.

Works on the canonical JSON serialisation: an address is digits, dots, hex and colons, which JSON
never escapes, so one byte replacement reaches every string (keys, bodies, headers, TLS fields,
failure strings) at any depth. It errs on the side of scrubbing (``1.2.3.4`` inside ``11.2.3.45``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

import orjson

SCRUBBED = b"[scrubbed]"
LOCAL = "127.0.0.1"


def variants(address: str) -> set[bytes]:
    """The spellings of one address worth replacing (IPv6: compressed, exploded, upper case)."""
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return {address.encode()} if len(address) >= 7 else set()
    if ip.is_loopback or ip.is_unspecified:
        return set()
    out = {str(ip).encode()}
    if isinstance(ip, ipaddress.IPv6Address):
        out |= {ip.exploded.encode(), str(ip).upper().encode(), ip.exploded.upper().encode()}
        if ip.ipv4_mapped is not None:
            out |= variants(str(ip.ipv4_mapped))
    return out


def scrub(measurement: dict[str, Any], addresses: Iterable[str]) -> dict[str, Any]:
    """The measurement with every occurrence of ``addresses`` scrubbed and probe_ip set to 127.0.0.1."""
    needles: set[bytes] = set()
    for address in addresses:
        if address:
            needles |= variants(address)
    measurement["probe_ip"] = LOCAL
    if not needles:
        return measurement
    data = orjson.dumps(measurement)
    changed = data
    # longest first so an exploded IPv6 form is not half-replaced by a shorter spelling
    for needle in sorted(needles, key=len, reverse=True):
        changed = changed.replace(needle, SCRUBBED)
    if changed is data or changed == data:
        return measurement
    out: dict[str, Any] = orjson.loads(changed)
    out["probe_ip"] = LOCAL
    return out
