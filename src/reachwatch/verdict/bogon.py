"""Bogon and loopback addresses, with OONI's list (probe-cli ``internal/netxlite/bogon.go``).

NB: the lab's site addresses (TEST-NET, 198.18.0.0/15) are bogons by this list; a bogon answer
only means DNS blocking when the control did not resolve the same address (see verdict.dns).
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Final

_BOGONS4: Final = tuple(
    ipaddress.ip_network(cidr)
    for cidr in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "255.255.255.255/32",
    )
)
_BOGONS6: Final = tuple(
    ipaddress.ip_network(cidr)
    for cidr in (
        "::/128",
        "::1/128",
        "::ffff:0:0/96",
        "::/96",
        "100::/64",
        "2001:10::/28",
        "2001:db8::/32",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
        "2002::/24",
        "2002:a00::/24",
        "2002:7f00::/24",
        "2002:a9fe::/32",
        "2002:ac10::/28",
        "2002:c000::/40",
        "2002:c000:200::/40",
        "2002:c0a8::/32",
        "2002:c612::/31",
        "2002:c633:6400::/40",
        "2002:cb00:7100::/40",
        "2002:e000::/20",
        "2002:f000::/20",
        "2002:ffff:ffff::/48",
        "2001::/40",
        "2001:0:a00::/40",
        "2001:0:7f00::/40",
        "2001:0:a9fe::/48",
        "2001:0:ac10::/44",
        "2001:0:c000::/56",
        "2001:0:c000:200::/56",
        "2001:0:c0a8::/48",
        "2001:0:c612::/47",
        "2001:0:c633:6400::/56",
        "2001:0:cb00:7100::/56",
        "2001:0:e000::/36",
        "2001:0:f000::/36",
        "2001:0:ffff:ffff::/64",
    )
)


@lru_cache(maxsize=8192)
def is_bogon(address: str) -> bool:
    """True for bogons and for anything that is not an IP address (as OONI does)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return True
    if ip.is_loopback or ip.is_link_local:
        return True
    nets = _BOGONS4 if ip.version == 4 else _BOGONS6
    return any(ip in net for net in nets)


# Reserved for documentation and benchmarking: bogons to OONI, but never the sink a censor answers
# with. Labs (ours included) stand public sites on them, so an answer there is a hijack, not a bogon.
_DOCUMENTATION: Final = tuple(
    ipaddress.ip_network(cidr)
    for cidr in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "198.18.0.0/15", "2001:db8::/32")
)


@lru_cache(maxsize=8192)
def is_sink(address: str) -> bool:
    """A bogon a censor answers with to sink traffic (private, loopback, unspecified...).

    Documentation and benchmarking ranges are bogons (``is_bogon``) but not sinks.
    """
    if not is_bogon(address):
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return True
    return not any(ip in net for net in _DOCUMENTATION if net.version == ip.version)


@lru_cache(maxsize=8192)
def is_loopback(address: str) -> bool:
    """True for loopback addresses and for anything that is not an IP address."""
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return True
