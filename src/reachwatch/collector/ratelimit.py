"""Per-network token buckets for writes: keyed by attributed ASN, else by the /24 (/48 for IPv6).

Only network prefixes are held, in memory, never a full address. Submitters in the exempt networks
(``--rate-exempt``; by default loopback: the collector's own host, its local probes, load tests and
tools) are not limited: the limit keeps one volunteer network from crowding out the others.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable

from reachwatch.collector.submitter import network_of


def network_key(asn: str | None, address: str) -> str:
    if asn:
        return asn
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "unknown"
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


#: ``--rate-exempt``'s default: loopback, the collector's own host (none once ``--rate`` or
#: ``--burst`` is given: a limit asked for applies to every submitter)
LOOPBACK = "127.0.0.0/8,::1"
#: ``--rate`` and ``--burst``'s defaults: measurements per second and per network, and its bucket
DEFAULT_RATE = 50.0
DEFAULT_BURST = 5_000.0


def networks_of(value: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Networks or addresses, comma-separated ("" for none: ``--rate-exempt``, ``--trusted-proxy``),
    an IPv4-mapped one as its IPv4 network (as submitters are read,
    :mod:`reachwatch.collector.submitter`); a ValueError naming a bad entry."""
    found = []
    for entry in (item.strip() for item in value.split(",")):
        if not entry:
            continue
        try:
            found.append(network_of(ipaddress.ip_network(entry, strict=False)))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or network") from None
    return tuple(found)


class RateLimiter:
    """``rate`` tokens per second per key, up to ``burst``; ``rate <= 0`` disables limiting.
    Submitters in ``exempt`` networks are not limited (:meth:`exempts`)."""

    def __init__(
        self,
        rate: float,
        burst: float,
        clock: Callable[[], float] = time.monotonic,
        exempt: str = LOOPBACK,
    ) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._exempt = networks_of(exempt)

    def exempts(self, address: str) -> bool:
        """Whether ``address`` (a submitter's) is in an exempt network (~1 us; not remembered:
        no full address is held)."""
        if not self._exempt:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self._exempt if net.version == ip.version)

    def take(self, key: str, cost: float = 1.0) -> float:
        """0.0 when allowed (tokens taken), else the seconds to wait before retrying."""
        if self.rate <= 0:
            return 0.0
        now = self._clock()
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if cost > self.burst:
            return math.inf
        if tokens >= cost:
            self._buckets[key] = (tokens - cost, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > 100_000:
            self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 60}
        return (cost - tokens) / self.rate
