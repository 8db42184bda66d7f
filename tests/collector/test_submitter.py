"""The submitter's address in its one form: what attribution, the rate limit and scrubbing get."""

from __future__ import annotations

import ipaddress

import pytest

from reachwatch.collector.ratelimit import networks_of
from reachwatch.collector.submitter import address_of, submitter_of


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("198.51.100.7", "198.51.100.7"),
        ("198.51.100.7:5060", "198.51.100.7"),
        ("2001:DB8::7", "2001:db8::7"),
        ("[2001:db8::7]:5060", "2001:db8::7"),
        # an IPv4 address mapped into IPv6 (a dual-stack socket's or proxy's) is that IPv4 address
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("::FFFF:C000:201", "192.0.2.1"),
        ("[::ffff:192.0.2.1]:5060", "192.0.2.1"),
        # other IPv6 addresses holding an IPv4 one are IPv6 networks of their own
        ("::192.0.2.1", "::c000:201"),  # IPv4-compatible (deprecated)
        ("64:ff9b::c000:201", "64:ff9b::c000:201"),  # NAT64
        ("2002:c000:201::1", "2002:c000:201::1"),  # 6to4
        # an IPv6 zone names an interface of the host that wrote it, not the address: dropped
        ("fe80::1%eth0", "fe80::1"),
        ("[fe80::1%eth0]:5060", "fe80::1"),
        ("fe80::1%25eth0", "fe80::1"),  # as in a URI
        ("::ffff:192.0.2.1%eth0", "192.0.2.1"),
        ("192.0.2.1%eth0", None),  # IPv4 has no zones
        ("fe80::1%", None),
        ("fe80::1%eth0%eth1", None),
        ("", None),
        ("1.2.3", None),
        ("[1.2.3.4", None),
        ("proxy.example", None),
        ("198.51.100.028", None),
    ],
)
def test_address_of(text: str, address: str | None) -> None:
    found = address_of(text)
    assert (None if found is None else str(found)) == address


@pytest.mark.parametrize(
    ("peer", "submitter"),
    [
        ("203.0.113.77", "203.0.113.77"),
        ("::ffff:203.0.113.77", "203.0.113.77"),
        ("fe80::1%eth0", "fe80::1"),  # how Python's socket writes a link-local peer
        ("2001:db8::1", "2001:db8::1"),
        ("", ""),
        ("testclient", ""),  # Starlette's TestClient: no address to attribute or scrub
    ],
)
def test_the_submitter_is_the_peer_in_its_one_form(peer: str, submitter: str) -> None:
    assert submitter_of({"type": "http", "client": (peer, 40000)}) == submitter
    assert submitter_of({"type": "http", "client": None}) == ""


def test_mapped_networks_are_ipv4_networks() -> None:
    """``--trusted-proxy``/``--rate-exempt`` given in IPv4-mapped form match the IPv4 addresses
    the submitters are read as."""
    assert networks_of("::ffff:10.0.0.0/104, ::ffff:127.0.0.1, ::1") == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("::1/128"),
    )
