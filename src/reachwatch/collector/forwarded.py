"""The submitter behind a trusted reverse proxy: the address its ``X-Forwarded-For`` names.

The collector reads the header itself rather than through uvicorn's proxy-headers middleware,
whose rule differs where it matters for attribution and privacy: an empty nearest entry
(``X-Forwarded-For: 198.51.100.7,`` or an empty header) left the proxy as the client, so the
measurement was attributed to the proxy's own network and the address before it went unscrubbed.
Here, from a trusted peer, the entries are read from the nearest back: those naming a trusted
proxy (``--trusted-proxy`` addresses and networks) are passed over; the first other entry is the
submitter if it is an IP address (bare, with a port, or an IPv6 one in brackets; an IPv4-mapped
one read as its IPv4 address, :mod:`reachwatch.collector.submitter`) and an unknown submitter ("":
unattributed, nothing to scrub) if it is anything else, empty included. A request
from a trusted peer without the header is the proxy's own (a health check): its address is the
peer's, as for any direct request. ``*`` trusts any peer, but names no entry a proxy: the nearest
entry, the one the proxy added, is the submitter (what a client wrote before it is never taken).

RFC 7239's ``Forwarded`` is not read: a proxy writes one of the two headers and passes the other
on as the client wrote it, and which one it writes is not in the request, so reading both would
let any client name itself. A request from a trusted peer with ``Forwarded`` and no
``X-Forwarded-For`` was forwarded by a proxy that names its client only there: its submitter is
unknown, never the proxy, and the log says once to make the proxy send ``X-Forwarded-For``.
"""

from __future__ import annotations

import logging

from starlette.types import Scope

from reachwatch.collector.ratelimit import networks_of
from reachwatch.collector.submitter import Address, address_of

log = logging.getLogger(__name__)


class TrustedProxies:
    """``--trusted-proxy``: which peers may name the submitter, and the submitter they name."""

    def __init__(self, spec: str) -> None:
        entries = [item.strip() for item in spec.split(",") if item.strip()]
        self.any = "*" in entries
        self.networks = networks_of(",".join(entry for entry in entries if entry != "*"))
        #: whether the log said that a trusted proxy sends only ``Forwarded``
        self.warned = False

    def _listed(self, ip: Address) -> bool:
        return any(ip.version == net.version and ip in net for net in self.networks)

    def trusts(self, host: str) -> bool:
        """Whether the peer ``host`` is a trusted proxy."""
        if self.any:
            return True
        ip = address_of(host)
        return ip is not None and self._listed(ip)

    def submitter(self, forwarded: list[bytes]) -> str:
        """The submitter the ``X-Forwarded-For`` values (in the order received) name; "" if unknown."""
        entries = b",".join(forwarded).decode("latin-1").split(",")
        for entry in reversed(entries):
            ip = address_of(entry)
            if ip is None:
                return ""  # empty, a name, garbage: no address to attribute or scrub
            if not self._listed(ip):
                return str(ip)
        # every entry a trusted proxy: the request began on one of them
        first = address_of(entries[0])
        return "" if first is None else str(first)

    def rewrite(self, scope: Scope) -> None:
        """Put the submitter in ``scope["client"]`` (port 0) and the scheme the proxy was reached
        by in ``scope["scheme"]``, for a request from a trusted proxy."""
        client = scope.get("client")
        if not client or not self.trusts(client[0]):
            return
        forwarded: list[bytes] = []
        rfc7239 = False
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                forwarded.append(value)
            elif name == b"x-forwarded-proto" and value.strip() in (b"http", b"https"):
                scope["scheme"] = value.strip().decode()
            elif name == b"forwarded":
                rfc7239 = True
        if forwarded:
            scope["client"] = (self.submitter(forwarded), 0)
        elif rfc7239:
            # forwarded, by a proxy that names its client in a header not read here: not the proxy
            scope["client"] = ("", 0)
            if not self.warned:
                self.warned = True
                log.warning(
                    "a trusted proxy sent Forwarded without X-Forwarded-For: its submitters are "
                    "unknown (unattributed, not scrubbed); make it send X-Forwarded-For "
                    "(docs/collector.md, --trusted-proxy)"
                )
