"""Flat, typed records of what a web_connectivity measurement saw (not what it means).

One record per DNS answer set, TCP connect, TLS handshake, HTTP transaction and control hop.
Conventions shared by every record:

- ``failure`` is ``None`` for success, otherwise a failure string (OONI's names, kept as sent);
- ``depth`` is the redirect hop (0 = the input URL), from the ``depth=N`` tag or inferred;
- ``transaction_id`` is ``None`` when the measurement did not carry one (probes before v0.5);
- ``fetch_body`` is ``None`` when untagged (our probe, old probes), ``False`` for OONI's
  connectivity-check endpoints that never fetched the page;
- a value that is absent or malformed is ``None`` ("unknown"), never a guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class DNSLookup:
    """One resolver answer (or failure) for one hostname and query type."""

    hostname: str
    engine: str  # "getaddrinfo", "udp", "doh", "system", ... ("" when unknown)
    query_type: str
    failure: str | None
    addrs: tuple[str, ...]  # IPv4/IPv6 answers only, in answer order
    depth: int
    transaction_id: int | None
    duplicate: bool = False  # from x_dns_duplicate_responses: a late, extra answer


@dataclass(frozen=True, slots=True)
class TCPConnect:
    ip: str
    port: int
    failure: str | None
    depth: int
    transaction_id: int | None
    fetch_body: bool | None

    @property
    def address(self) -> str:
        return endpoint(self.ip, self.port)


@dataclass(frozen=True, slots=True)
class TLSHandshake:
    address: str  # "ip:port" / "[ipv6]:port"
    ip: str
    server_name: str
    failure: str | None
    depth: int
    transaction_id: int | None
    fetch_body: bool | None
    bytes_received: int | None
    no_tls_verify: bool


@dataclass(frozen=True, slots=True)
class HTTPTransaction:
    url: str
    scheme: str
    hostname: str
    failure: str | None
    status_code: int | None  # kept even when the transaction failed after the headers
    body_length: int | None  # bytes; None without a response body
    body_is_truncated: bool
    title: str
    header_keys: frozenset[str]  # lower-case names
    depth: int
    transaction_id: int | None
    bytes_received: int | None


@dataclass(frozen=True, slots=True)
class ControlHTTP:
    failure: str | None
    status_code: int | None
    body_length: int | None
    title: str
    header_keys: frozenset[str]


@dataclass(frozen=True, slots=True)
class ControlDNS:
    failure: str | None
    addrs: tuple[str, ...]  # IP addresses only


@dataclass(frozen=True, slots=True)
class Control:
    """The control helper's view of one hop. A missing part is ``None``."""

    depth: int
    hostname: str  # the hop's host, normalised (see parse.norm_host)
    dns: ControlDNS | None
    tcp: Mapping[str, str | None]  # "ip:port" -> failure
    tls: Mapping[str, tuple[str, str | None]]  # "ip:port" -> (server_name, failure)
    http: ControlHTTP | None
    ip_asn: Mapping[str, int]  # ip -> ASN (0 = unknown)


@dataclass(frozen=True, slots=True)
class Observations:
    """Everything flattened out of one measurement."""

    test_name: str | None
    input: str | None
    hostname: str  # normalised host of the input URL ("" when unknown)
    has_test_keys: bool
    dns: tuple[DNSLookup, ...] = ()
    tcp: tuple[TCPConnect, ...] = ()
    tls: tuple[TLSHandshake, ...] = ()
    http: tuple[HTTPTransaction, ...] = ()
    controls: tuple[Control | None, ...] = ()  # index = depth; [0] is test_keys.control
    control_failure: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)  # legacy top-level failures

    def control_for(self, depth: int) -> Control | None:
        """The control of this hop, or None (no such hop or no control)."""
        if 0 <= depth < len(self.controls):
            return self.controls[depth]
        return None


def endpoint(ip: str, port: int) -> str:
    """``ip:port`` with IPv6 addresses bracketed, as in OONI's control keys."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
