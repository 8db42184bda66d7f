"""Flat, typed records of what a web_connectivity measurement saw (not what it means).

One record per DNS answer set, TCP connect, TLS handshake, HTTP transaction and control hop.
Conventions shared by every record:

- ``failure`` is ``None`` for success, otherwise a failure string (OONI's names, kept as sent);
- ``depth`` is the redirect hop (0 = the input URL), from the ``depth=N`` tag or inferred;
- ``transaction_id`` is ``None`` when the measurement did not carry one (probes before v0.5);
- ``fetch_body`` is ``None`` when untagged (our probe, old probes), ``False`` for OONI's
  connectivity-check endpoints that never fetched the page;
- a value that is absent or malformed is ``None`` ("unknown"), never a guess.

Records are read-only by convention, not ``frozen``: a frozen dataclass pays an
``object.__setattr__`` call per field (~0.1 µs) and ``flatten`` builds hundreds of fields per
measurement, which made up a quarter of the verdict engine's time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reachwatch.observations.text import body_bytes_and_text, header_keys, title_of


@dataclass(slots=True)
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


@dataclass(slots=True)
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


@dataclass(slots=True)
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


@dataclass(slots=True)
class HTTPTransaction:
    """One HTTP exchange. The body's length and title and the header names are read from the
    raw ``response`` on first use: only the deciding response is ever compared with the control.
    """

    url: str
    scheme: str
    hostname: str
    failure: str | None
    status_code: int | None  # kept even when the transaction failed after the headers
    body_is_truncated: bool
    depth: int
    transaction_id: int | None
    bytes_received: int | None
    response: Mapping[str, Any] = field(repr=False, compare=False)  # as sent ({} when absent)
    _body: tuple[int | None, str] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def body_length(self) -> int | None:
        """Bytes; None without a response body."""
        return self.length_and_title()[0]

    @property
    def title(self) -> str:
        return self.length_and_title()[1]

    @property
    def header_keys(self) -> frozenset[str]:
        """Lower-case names."""
        return header_keys(self.response.get("headers"), self.response.get("headers_list"))

    def length_and_title(self) -> tuple[int | None, str]:
        """(``body_length``, ``title``), read from the body once."""
        if self._body is None:  # decoding a body (base64, UTF-8 length) is the costly part
            length, text = body_bytes_and_text(self.response.get("body"))
            self._body = (length, title_of(text) if text else "")
        return self._body


@dataclass(slots=True)
class ControlHTTP:
    failure: str | None
    status_code: int | None
    body_length: int | None
    title: str
    header_keys: frozenset[str]


@dataclass(slots=True)
class ControlDNS:
    failure: str | None
    addrs: tuple[str, ...]  # IP addresses only


@dataclass(slots=True)
class Control:
    """The control helper's view of one hop. A missing part is ``None``."""

    depth: int
    hostname: str  # the hop's host, normalised (see parse.norm_host)
    dns: ControlDNS | None
    tcp: Mapping[str, str | None]  # "ip:port" -> failure
    tls: Mapping[str, tuple[str, str | None]]  # "ip:port" -> (server_name, failure)
    http: ControlHTTP | None
    ip_asn: Mapping[str, int]  # ip -> ASN (0 = unknown)


@dataclass(slots=True)
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
