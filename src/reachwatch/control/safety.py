"""What the control helper may connect to: public unicast addresses only, unless in the lab.

Without this rule a control helper is an open proxy into its own network (SSRF).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

REFUSED = "bogon_address_refused"
MAX_ENDPOINTS = 10  # the union of the helper's and the probe's endpoints that it connects to
MAX_REQUEST_ENDPOINTS = 64  # more than this in a request is a malformed request
MAX_REQUEST_BYTES = 64 * 1024


def is_bogon(ip: str) -> bool:
    """Loopback, private, link-local, shared, reserved, documentation, multicast, unspecified."""
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return not addr.is_global or addr.is_multicast


@dataclass(frozen=True, slots=True)
class Safety:
    lab: bool = False

    def refuse(self, ip: str) -> str | None:
        """The failure string for an address we will not connect to, else None."""
        if self.lab:
            return None
        return REFUSED if is_bogon(ip) else None
