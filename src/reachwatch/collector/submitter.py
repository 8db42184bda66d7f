"""The submitter's address in one form: what attribution, the rate limit and scrubbing all get.

The submitter is the socket's peer or, from a trusted proxy, the address its ``X-Forwarded-For``
names (:mod:`reachwatch.collector.forwarded` puts it in ``scope["client"]``); every route reads it
with :func:`submitter_of`, and every address the collector reads (a peer, a header's entry) goes
through :func:`address_of`. An IPv4 address mapped into IPv6 (``::ffff:192.0.2.1``, how a socket
listening on ``::`` sees an IPv4 peer, and what a dual-stack proxy may forward) is its IPv4
address: looked up as such (a database need not alias ``::ffff:0:0/96`` to its IPv4 tree),
rate-limited by its /24 (not every one under ``::/48``), exempt and trusted as the IPv4 address
is, and scrubbed in every spelling of it, the mapped ones included
(:mod:`reachwatch.collector.privacy`). An IPv6 zone (``fe80::1%eth0``: an interface of the host
that wrote it, not part of the address) is dropped; the address scrubbed, the zone's name stays. Other IPv6 addresses that hold an IPv4 one are left as they
are: the IPv4-compatible ``::192.0.2.1`` is deprecated (RFC 4291) and no stack writes a peer so;
a NAT64 or 6to4 address (``64:ff9b::/96``, ``2002::/16``) is the IPv6 side of a translator or
relay, and names an IPv4 submitter only where the operator's own translator sits in front of the
collector, with a prefix of its choosing.
"""

from __future__ import annotations

import functools
import ipaddress
import re

from starlette.types import Scope

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: ``198.51.100.7``, ``198.51.100.7:5060``, ``2001:db8::7``, ``[2001:db8::7]:5060``, and an
#: IPv6 one with a zone: ``fe80::1%eth0``, ``[fe80::1%eth0]:5060``
_WRITTEN = re.compile(
    r"\[(?P<bracketed>[0-9A-Fa-f:.]+)(?P<zone>%[^\s%\[\]]+)?\](?::[0-9]{1,5})?"
    r"|(?P<ipv4>[0-9.]+)(?::[0-9]{1,5})?"
    r"|(?P<bare>[0-9A-Fa-f:.]+)(?P<bare_zone>%[^\s%\[\]]+)?"
)
#: longer text is no address, and is not remembered (a header's entry is the client's to write)
_LONGEST = 100
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def address_of(text: str) -> Address | None:
    """The address ``text`` names (bare, with a port, an IPv6 one in brackets or with a zone) in
    its one form: an IPv4-mapped one as its IPv4 address, a zone dropped; None if it names none."""
    text = text.strip()
    return _address_of(text) if len(text) <= _LONGEST else None


@functools.lru_cache(maxsize=4096)  # a submitter repeats itself
def _address_of(text: str) -> Address | None:
    match = _WRITTEN.fullmatch(text)
    if match is None:
        return None
    written = match.group("bracketed") or match.group("ipv4") or match.group("bare")
    try:
        ip = ipaddress.ip_address(written)
    except ValueError:
        return None
    if ip.version == 4 and (match.group("zone") or match.group("bare_zone")):
        return None  # IPv4 has no zones
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def network_of(net: IPNetwork) -> IPNetwork:
    """``net`` in the form its addresses are read in: an IPv4-mapped network
    (``::ffff:10.0.0.0/104``) as its IPv4 one (``10.0.0.0/8``)."""
    if isinstance(net, ipaddress.IPv6Network) and net.prefixlen >= 96 and net.subnet_of(_MAPPED):
        return ipaddress.IPv4Network((int(net.network_address) & 0xFFFF_FFFF, net.prefixlen - 96))
    return net


def submitter_of(scope: Scope) -> str:
    """The submitter's address in its one form: the peer's or, behind a trusted proxy, the one
    its X-Forwarded-For names; "" (unknown) if that is not an IP address, so that no arbitrary
    text is taken for an address to scrub."""
    client = scope.get("client")
    return _submitter(client[0]) if client else ""


@functools.lru_cache(maxsize=4096)
def _submitter(host: str) -> str:
    ip = address_of(host)
    return "" if ip is None else str(ip)
