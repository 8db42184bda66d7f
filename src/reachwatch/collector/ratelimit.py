"""Per-network token buckets for writes: keyed by attributed ASN, else by the /24 (/48 for IPv6).

Only network prefixes are held, in memory, never a full address. Submitters in the exempt networks
(``--rate-exempt``; by default loopback: the collector's own host, its local probes, load tests and
tools) are not limited: the limit keeps one volunteer network from crowding out the others.

The buckets are held least recently used first. A bucket idle until it is full again is as good
as none (a network not held gets a full one), so each request looks at the oldest few and drops
those that are full: idle networks go as requests come, a few buckets' work a request whatever
the number held (a refused request used to rebuild the whole table past 100,000, 57 ms at
150,000, and nothing went until one was refused). Past ``max_buckets`` the network seen least
recently is forgotten even if its bucket is not full: memory stays bounded (~25 MB at the
default 100,000) however many networks the requests come from, at the price of a fresh bucket
for a network idle while that many others came.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable

from reachwatch.collector.submitter import network_of

#: An IPv4 address as :func:`~reachwatch.collector.submitter.submitter_of` writes it (no leading
#: zeros), its first three octets apart
_IPV4 = re.compile(
    r"((?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3})(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
)


def network_key(asn: str | None, address: str) -> str:
    """The bucket's key: the attributed ASN, else the /24 (IPv4) or /48 (IPv6) of ``address``,
    "unknown" for no address. Every request asks (the body budget's sender too): an IPv4 address
    is cut as text (~0.5 us; ``ipaddress`` took ~21 us a request)."""
    if asn:
        return asn
    v4 = _IPV4.fullmatch(address)
    if v4 is not None:
        return f"{v4.group(1)}0/24"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "unknown"
    if ip.version == 4:  # a spelling submitter_of never gives (leading zeros are refused anyway)
        return str(ipaddress.IPv4Network((int(ip) & ~0xFF, 24)))
    return str(ipaddress.IPv6Network((int(ip) >> 80 << 80, 48)))


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


#: buckets held at most: past it the network seen least recently is forgotten
MAX_BUCKETS = 100_000
#: buckets a request looks at, oldest first, to drop the full ones: more than the one a request
#: may add, so that idle buckets go faster than new ones come
_PRUNE_STEP = 2


@dataclasses.dataclass(frozen=True, slots=True)
class LimiterStatistics:
    buckets: int  # networks held now
    examined: int  # buckets looked at to drop the full ones, since the start (a few a request)
    evicted: int  # buckets dropped before they were full, ``max_buckets`` being held


class RateLimiter:
    """``rate`` tokens per second per key, up to ``burst``; ``rate <= 0`` disables limiting.
    Submitters in ``exempt`` networks are not limited (:meth:`exempts`). At most ``max_buckets``
    keys are held (the module's docstring)."""

    def __init__(
        self,
        rate: float,
        burst: float,
        clock: Callable[[], float] = time.monotonic,
        exempt: str = LOOPBACK,
        max_buckets: int = MAX_BUCKETS,
    ) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self._clock = clock
        #: key: (tokens, when they were counted), least recently used first
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._max_buckets = max(max_buckets, 1)
        self._examined = 0
        self._evicted = 0
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
        """0.0 when allowed (tokens taken), else the seconds to wait before retrying (``inf`` for
        more than ``burst``, which never passes)."""
        if self.rate <= 0:
            return 0.0
        if cost > self.burst:
            return math.inf
        now = self._clock()
        held = self._buckets.pop(key, None)
        tokens = self.burst if held is None else min(self.burst, held[0] + (now - held[1]) * self.rate)
        self._prune(now)
        wait = 0.0
        if tokens >= cost:
            tokens -= cost
        else:
            wait = (cost - tokens) / self.rate
        self._buckets[key] = (tokens, now)  # the most recently used
        return wait

    def _prune(self, now: float) -> None:
        """Drop the oldest buckets that are full again (up to :data:`_PRUNE_STEP`), then the
        oldest one if ``max_buckets`` are held: room for one more."""
        buckets = self._buckets
        for _ in range(_PRUNE_STEP):
            if not buckets:
                return
            oldest = next(iter(buckets))
            tokens, last = buckets[oldest]
            self._examined += 1
            if tokens + (now - last) * self.rate < self.burst:
                break  # those after it may be full too: each goes once it is the oldest
            del buckets[oldest]
        if len(buckets) >= self._max_buckets:
            buckets.popitem(last=False)
            self._evicted += 1

    def statistics(self) -> LimiterStatistics:
        return LimiterStatistics(len(self._buckets), self._examined, self._evicted)
