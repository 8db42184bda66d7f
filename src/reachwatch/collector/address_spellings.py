"""What is sought to scrub an address: its spellings (:func:`spellings`) and where to seek each
in a folded text (:func:`searches`), read from a submitter's or a probe_ip's text (:func:`addresses_in`).

:mod:`reachwatch.collector.privacy` holds the search itself and the replacement; its docs list
the spellings found and those not sought.
"""

from __future__ import annotations

import functools
import ipaddress
import re

from reachwatch.collector.ipv6_text import first_group

LOCAL = "127.0.0.1"
#: addresses that name no one and are never scrubbed: the placeholder every probe writes as its
#: ``probe_ip`` (scrubbing it would rewrite the measurement's own copies of it) and its IPv6 twin,
#: whose three bytes ``::1`` sit inside countless other IPv6 addresses. Every other loopback address
#: (``127.0.1.7``, a probe's or a submitter's on a shared host) is scrubbed like any address.
NOT_SCRUBBED = frozenset({ipaddress.ip_address(LOCAL), ipaddress.ip_address("::1")})


def variants(address: str) -> set[bytes]:
    """The spellings of one address worth replacing (see :func:`spellings`)."""
    return set(spellings(address))


@functools.lru_cache(maxsize=4096)  # a batch repeats its submitter and probe_ip on every line
def spellings(address: str) -> frozenset[bytes]:
    """The listed spellings: as written; IPv4 with dashes (host names), both reversed
    (``55.2.0.192.in-addr.arpa``, ``55-2-0-192.dyn.example.net``: reverse DNS names), zero-padded
    (``192.000.002.055``), percent-encoded dots, and as an IPv4-mapped IPv6 address in hex
    (``::ffff:c000:237``, each IPv6 spelling); IPv6 compressed, exploded and uncompressed, either
    case, colons as they are, percent-encoded or as dashes (``2001-db8--1.ipv6.example``), its
    PTR name; an IPv4-mapped address's IPv4 spellings too.

    The scrubber seeks each folded (:func:`searches`), so in any mix of cases, of dashes and
    dots, of percent-encoded and plain separators, and more than these (an IPv4 address padded
    unevenly, an IPv6 address in any valid form): the list is what the tests check is gone."""
    ip = address_of(address)
    if ip is None or ip.is_unspecified or ip in NOT_SCRUBBED:
        # not an address (a hostname, a JSON fragment...): replacing its bytes could reach the
        # measurement's own keys and values (``web_connectivity``, ``"test_keys"``) and break the JSON
        return frozenset()
    if isinstance(ip, ipaddress.IPv4Address):
        octets = str(ip).split(".")
        out = set()
        for parts in (octets, octets[::-1]):  # the reversed ones cover the PTR name
            for sep in (".", "-", "%2E", "%2e"):
                out.add(sep.join(parts).encode())
        out.add(".".join(f"{int(o):03d}" for o in octets).encode())
        # the same address mapped into IPv6 and written in hex
        return frozenset(out | _ipv6_spellings(ipaddress.IPv6Address(f"::ffff:{ip}")))
    out = _ipv6_spellings(ip) | {ip.reverse_pointer.encode()}
    if ip.ipv4_mapped is not None:
        out |= spellings(str(ip.ipv4_mapped))
    return frozenset(out)


def _ipv6_spellings(ip: ipaddress.IPv6Address) -> set[bytes]:
    groups = ip.exploded.split(":")
    # uncompressed without leading zeros (``2001:db8:0:0:0:0:0:1``), as Java and some logs write
    # it; the compressed form with each group's leading zeros kept (``::ffff:0a14:1e28``)
    plain = ":".join(f"{int(group, 16):x}" for group in groups)
    padded = str(ip) if ip.ipv4_mapped is None else "::ffff:" + ":".join(groups[-2:])
    out: set[bytes] = set()
    for spelling in {str(ip), ip.exploded, plain, padded}:
        for case in (spelling, spelling.upper()):
            # and percent-encoded, as in a URL's query (``?ip=2001%3Adb8%3A%3A1``)
            out |= {case.encode(), case.replace(":", "%3A").encode(), case.replace(":", "%3a").encode()}
            out.add(case.replace(":", "-").encode())  # ipv6-literal host names
    return out


#: what may surround an address in a probe_ip: brackets, a port, an IPv6 zone (``fe80::1%eth0``)
_ADDRESS = re.compile(r"^\[?([0-9A-Fa-f:.]+)(?:%[^\]]*)?\]?(?::[0-9]{1,5})?$")


def address_of(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address ``text`` names, bare, in brackets, with a port or a zone; None if none."""
    match = _ADDRESS.match(text.strip())
    if match is None:
        return None
    host = match.group(1)
    candidates = [host]
    if host.count(":") == 1:  # 192.0.2.1:443
        candidates.append(host.split(":")[0])
    for candidate in candidates:
        try:
            return ipaddress.ip_address(candidate)
        except ValueError:
            continue
    return None


#: what separates the addresses of a probe_ip that names several (``192.0.2.1, 192.0.2.2``)
_LIST = re.compile(r"[,;\s]+")
#: a network's prefix length after an address (``192.0.2.55/32``)
_PREFIX = re.compile(r"/[0-9]{1,3}$")


def addresses_in(text: str) -> list[str]:
    """The addresses a submitter or probe_ip text may name: itself, or each of a list, a prefix
    length dropped."""
    return [_PREFIX.sub("", part) for part in _LIST.split(text.strip()) if part]


def fold(data: bytes) -> bytes:
    """Dashes as dots and letters in lower case: what the spellings of an address differ by. The
    same length as ``data``, so that a spelling found in it is at the same place in ``data``.
    (``lower`` and ``replace`` run at ~2 GB/s, ``bytes.translate`` at ~0.7: 5 against 9 us for a
    median measurement.)"""
    return data.lower().replace(b"-", b".")


@functools.lru_cache(maxsize=4096)  # a batch repeats its submitter and probe_ip on every line
def searches(
    address: str,
) -> tuple[
    tuple[tuple[re.Pattern[bytes], int, frozenset[int]], ...],
    frozenset[bytes],
    tuple[tuple[bytes, frozenset[bytes], frozenset[int]], ...],
]:
    """How the spellings of one address are sought in a folded text (:func:`fold`): (patterns,
    needles, anchored), each folded spelling (:func:`spellings`, the percent-encoded ones
    apart: the text is searched percent-decoded) where it costs least.

    - patterns: (pattern, zeros, addresses) for an IPv4 address, as written with each octet
      padded with zeros or not (``127.0.1.002``; up to ``zeros`` more before the first), each
      place it is read as an IPv6 address embedding it (``::ffff:127.0.1.2``) too: one search
      for all of them (a regex with a literal prefix: about the time of a substring search,
      ~3x its instructions), where the plain and the padded form took one each.
    - needles: sought everywhere (an IPv4 address reversed; an IPv6 address's PTR name).
    - anchored: (anchor, needles, addresses): the spellings sought only where ``anchor`` is,
      which each of them holds (an IPv6 address's first group; for an IPv4 address, the longer
      of its two hex groups, ``7f00`` of ``::ffff:7f00:102``), and the IPv6 addresses read
      there in any valid spelling (:func:`~reachwatch.collector.ipv6_text.written_otherwise`):
      the address itself, or for an IPv4 one the IPv6 addresses that embed it (mapped
      ``::ffff:0:0/96``, compatible ``::/96``, NAT64's ``64:ff9b::/96``).
    """
    listed = spellings(address)
    ip = address_of(address)
    if not listed or ip is None:
        return (), frozenset(), ()
    folded = {fold(spelling) for spelling in listed if b"%" not in spelling}
    v4 = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else ip
    patterns: list[tuple[re.Pattern[bytes], int, frozenset[int]]] = []
    if v4 is None:  # IPv6
        anchor = first_group(ipaddress.IPv6Address(ip))
        values = frozenset({int(ip)})
    else:
        embedded = frozenset(int(ipaddress.IPv6Address(f"{prefix}{v4}")) for prefix in EMBEDDING)
        octets = str(v4).split(".")
        if v4 not in NOT_SCRUBBED:
            padded = [
                o.encode() if len(o) == 3 else b"0{0,%d}%s" % (3 - len(o), o.encode()) for o in octets[1:]
            ]
            pattern = re.compile(rb"\.".join([octets[0].encode(), *padded]))
            patterns.append((pattern, 3 - len(octets[0]), embedded))
        groups = [f"{int(v4) >> 16:x}".encode(), f"{int(v4) & 0xFFFF:x}".encode()]
        anchor = max((g for g in groups if g != b"0"), key=len)
        values = embedded
        if len(anchor) < 3:  # too common to seek everywhere (0.0.0.10): the mapped forms only
            anchor, values = b"ffff", frozenset({int(ipaddress.IPv6Address(f"::ffff:{v4}"))})
    needles = set()
    anchored = set()
    for spelling in folded:
        if anchor in spelling:
            anchored.add(spelling)
        elif not any(pattern.search(spelling) for pattern, _, _ in patterns):
            needles.add(spelling)
    return tuple(patterns), frozenset(needles), ((anchor, frozenset(anchored), values),)


#: the IPv6 prefixes an IPv4 address is sought embedded in (its 32 bits last)
EMBEDDING = ("::ffff:", "::", "64:ff9b::")
