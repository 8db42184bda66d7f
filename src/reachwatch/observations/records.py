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
measurement, which made up a quarter of the verdict engine's time. For the same reason each
record's ``__init__`` is written out: mypyc compiles a class's own ``__init__`` (~0.05 µs), while
the one ``@dataclass`` generates runs interpreted, its arguments packed into a tuple (~0.3–1 µs an
object, ~15 % of a verdict); ``@dataclass`` still gives ``__eq__`` and ``__repr__``. So do the
verdict's own classes and the collector's ``Staged``.
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

    def __init__(
        self,
        hostname: str,
        engine: str,
        query_type: str,
        failure: str | None,
        addrs: tuple[str, ...],
        depth: int,
        transaction_id: int | None,
        duplicate: bool = False,
    ) -> None:
        # by hand, so that mypyc compiles it (see observations.records)
        self.hostname = hostname
        self.engine = engine
        self.query_type = query_type
        self.failure = failure
        self.addrs = addrs
        self.depth = depth
        self.transaction_id = transaction_id
        self.duplicate = duplicate


@dataclass(slots=True)
class TCPConnect:
    ip: str
    port: int
    failure: str | None
    depth: int
    transaction_id: int | None
    fetch_body: bool | None

    def __init__(
        self,
        ip: str,
        port: int,
        failure: str | None,
        depth: int,
        transaction_id: int | None,
        fetch_body: bool | None,
    ) -> None:
        # by hand, so that mypyc compiles it (see observations.records)
        self.ip = ip
        self.port = port
        self.failure = failure
        self.depth = depth
        self.transaction_id = transaction_id
        self.fetch_body = fetch_body

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

    def __init__(
        self,
        address: str,
        ip: str,
        server_name: str,
        failure: str | None,
        depth: int,
        transaction_id: int | None,
        fetch_body: bool | None,
        bytes_received: int | None,
        no_tls_verify: bool,
    ) -> None:
        # by hand, so that mypyc compiles it (see observations.records)
        self.address = address
        self.ip = ip
        self.server_name = server_name
        self.failure = failure
        self.depth = depth
        self.transaction_id = transaction_id
        self.fetch_body = fetch_body
        self.bytes_received = bytes_received
        self.no_tls_verify = no_tls_verify


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

    def __init__(
        self,
        url: str,
        scheme: str,
        hostname: str,
        failure: str | None,
        status_code: int | None,
        body_is_truncated: bool,
        depth: int,
        transaction_id: int | None,
        bytes_received: int | None,
        response: Mapping[str, Any],
    ) -> None:
        # by hand, so that mypyc compiles it (see observations.records)
        self.url = url
        self.scheme = scheme
        self.hostname = hostname
        self.failure = failure
        self.status_code = status_code
        self.body_is_truncated = body_is_truncated
        self.depth = depth
        self.transaction_id = transaction_id
        self.bytes_received = bytes_received
        self.response = response
        self._body = None

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

    def __init__(
        self,
        failure: str | None,
        status_code: int | None,
        body_length: int | None,
        title: str,
        header_keys: frozenset[str],
    ) -> None:
        # by hand, so that mypyc compiles it (see observations.records)
        self.failure = failure
        self.status_code = status_code
        self.body_length = body_length
        self.title = title
        self.header_keys = header_keys


@dataclass(slots=True)
class ControlDNS:
    failure: str | None
    addrs: tuple[str, ...]  # IP addresses only

    def __init__(self, failure: str | None, addrs: tuple[str, ...]) -> None:
        # by hand, so that mypyc compiles it (see observations.records)
        self.failure = failure
        self.addrs = addrs


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

    def __init__(
        self,
        depth: int,
        hostname: str,
        dns: ControlDNS | None,
        tcp: Mapping[str, str | None],
        tls: Mapping[str, tuple[str, str | None]],
        http: ControlHTTP | None,
        ip_asn: Mapping[str, int],
    ) -> None:
        # by hand, so that mypyc compiles it (see observations.records)
        self.depth = depth
        self.hostname = hostname
        self.dns = dns
        self.tcp = tcp
        self.tls = tls
        self.http = http
        self.ip_asn = ip_asn


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

    def __init__(
        self,
        test_name: str | None,
        input: str | None,
        hostname: str,
        has_test_keys: bool,
        dns: tuple[DNSLookup, ...] = (),
        tcp: tuple[TCPConnect, ...] = (),
        tls: tuple[TLSHandshake, ...] = (),
        http: tuple[HTTPTransaction, ...] = (),
        controls: tuple[Control | None, ...] = (),
        control_failure: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        # by hand, so that mypyc compiles it (see observations.records)
        self.test_name = test_name
        self.input = input
        self.hostname = hostname
        self.has_test_keys = has_test_keys
        self.dns = dns
        self.tcp = tcp
        self.tls = tls
        self.http = http
        self.controls = controls
        self.control_failure = control_failure
        self.extra = {} if extra is None else extra

    def control_for(self, depth: int) -> Control | None:
        """The control of this hop, or None (no such hop or no control)."""
        if 0 <= depth < len(self.controls):
            return self.controls[depth]
        return None


def endpoint(ip: str, port: int) -> str:
    """``ip:port`` with IPv6 addresses bracketed, as in OONI's control keys."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
