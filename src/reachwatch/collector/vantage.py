"""Which vantage point a measurement came from, without keeping who sent it.

The cells' rules count *distinct probes* (two vantage points in a network-day say more than one
home router can; one technique from three says "blocked"). Counted by report id, as before session
17, one volunteer running the test three times (each run opens a report, as OONI probes do) was
three probes, and the network's day "blocked" (an outside check). A vantage point is the
submitting address instead: an IPv4 address whole (one household or one NAT), an IPv6 address by
its /64 (a household's prefix; its interface part changes by the hour with privacy extensions).

The address is never stored: what is stored (``probe_id_hash``) is a keyed hash of it, with a key
drawn at random for each UTC day, held in this process's memory only and dropped when the day is
over. Within a day the collector tells the same vantage point again; from the stored data no one,
the collector's operator included, can tell which address it was (the key is gone, and a key
kept would let the 2^32 IPv4 addresses be tried), nor link one day's vantage point to another's.
So a period's count of probes is of vantage-point days; a collector restarted within a day, or
several collectors sharing a store, count the same vantage point once per key.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import ipaddress
import secrets

#: An IPv6 submitter's vantage point: its /64
IPV6_PREFIX = 64


class Vantages:
    """Keyed hashes of submitters' vantage points, the key drawn anew each UTC day."""

    def __init__(self) -> None:
        self._day: dt.date | None = None
        self._key = b""
        #: today's hashes by submitter (single posts repeat their submitter), dropped with the key
        self._known: dict[str, str] = {}

    def of(self, submitter: str, now: dt.datetime) -> str | None:
        """16 hex digits naming ``submitter``'s vantage point on ``now``'s UTC day; None for an
        unknown submitter (the report id counts then, as before)."""
        if not submitter:
            return None
        day = now.astimezone(dt.UTC).date() if now.tzinfo else now.date()
        if day != self._day:
            self._day, self._key = day, secrets.token_bytes(32)
            self._known = {}
        known = self._known.get(submitter)
        if known is None:
            known = hashlib.blake2b(vantage_point(submitter), digest_size=8, key=self._key).hexdigest()
            if len(self._known) >= KNOWN:
                self._known = {}
            self._known[submitter] = known
        return known


#: Submitters whose hash is remembered within a day
KNOWN = 65_536


@functools.lru_cache(maxsize=4096)  # a collector hears from the same submitters again and again
def vantage_point(submitter: str) -> bytes:
    """The bytes naming ``submitter``'s vantage point: an IPv4 address (an IPv4-mapped IPv6 one
    too) whole, an IPv6 address's /64; text that is no address, as it is."""
    try:
        ip = ipaddress.ip_address(submitter.split("%", 1)[0])
    except ValueError:
        return submitter.encode()
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped.packed
        return ipaddress.IPv6Network((ip, IPV6_PREFIX), strict=False).network_address.packed[:8]
    return ip.packed
