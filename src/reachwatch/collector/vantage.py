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
So a period's count of probes is of vantage-point days.

A collector restarted within a day would draw a new key and count a vantage point again: three
runs of one volunteer with restarts between them were three probes, and the network's day
"blocked" (an outside check). With a journal, the day's key is kept in it (:data:`KEY_FILE`, read
and written by its owner only), replaced by the next day's: the day's hashes can be tried against
addresses only by someone who can read the collector's disk that day, who could as well watch
its traffic. Several collectors sharing one store still count a vantage point once each.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import ipaddress
import logging
import os
import secrets
from pathlib import Path

from reachwatch.collector.submitter import address_of

log = logging.getLogger(__name__)

#: An IPv6 submitter's vantage point: its /64
IPV6_PREFIX = 64


#: The day's key in the journal's directory: ``YYYY-MM-DD`` and the key in hex
KEY_FILE = "vantage-key"


class Vantages:
    """Keyed hashes of submitters' vantage points, the key drawn anew each UTC day (kept in
    ``key_file`` for that day, if given)."""

    def __init__(self, key_file: Path | None = None) -> None:
        self._day: dt.date | None = None
        self._key = b""
        self._key_file = key_file
        #: today's hashes by submitter (single posts repeat their submitter), dropped with the key
        self._known: dict[str, str] = {}

    def of(self, submitter: str, now: dt.datetime) -> str | None:
        """16 hex digits naming ``submitter``'s vantage point on ``now``'s UTC day; None for an
        unknown submitter (the report id counts then, as before)."""
        if not submitter:
            return None
        day = now.astimezone(dt.UTC).date() if now.tzinfo else now.date()
        if day != self._day:
            self._day, self._key = day, self._key_of(day)
            self._known = {}
        known = self._known.get(submitter)
        if known is None:
            known = hashlib.blake2b(vantage_point(submitter), digest_size=8, key=self._key).hexdigest()
            if len(self._known) >= KNOWN:
                self._known = {}
            self._known[submitter] = known
        return known

    def _key_of(self, day: dt.date) -> bytes:
        """The day's key: the one kept for it, or a new one (kept, replacing the day before's)."""
        path = self._key_file
        if path is not None:
            try:
                kept_day, _, kept = path.read_text().partition(" ")
                if kept_day == day.isoformat():
                    return bytes.fromhex(kept.strip())
            except (OSError, ValueError):
                pass  # none yet, or unreadable: a new one
        key = secrets.token_bytes(32)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f".{path.name}.tmp")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as fh:
                    fh.write(f"{day.isoformat()} {key.hex()}\n")
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
            except OSError as exc:  # a full disk: the key stays in memory (a restart counts anew)
                log.warning("could not keep the day's vantage key: %s", type(exc).__name__)
        return key


#: Submitters whose hash is remembered within a day
KNOWN = 65_536


@functools.lru_cache(maxsize=4096)  # a collector hears from the same submitters again and again
def vantage_point(submitter: str) -> bytes:
    """The bytes naming ``submitter``'s vantage point: an IPv4 address (an IPv4-mapped IPv6 one
    too: :func:`~reachwatch.collector.submitter.address_of`) whole, an IPv6 address's /64; text
    that is no address, as it is."""
    ip = address_of(submitter)
    if ip is None:
        return submitter.encode()
    if isinstance(ip, ipaddress.IPv6Address):
        return ipaddress.IPv6Network((ip, IPV6_PREFIX), strict=False).network_address.packed[:8]
    return ip.packed
