"""Per-network token buckets for writes: keyed by attributed ASN, else by the /24 (/48 for IPv6).

Only network prefixes are held, in memory, never a full address.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable


def network_key(asn: str | None, address: str) -> str:
    if asn:
        return asn
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "unknown"
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


class RateLimiter:
    """``rate`` tokens per second per key, up to ``burst``; ``rate <= 0`` disables limiting."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

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
