"""One pass over a web_connectivity measurement, keeping only what the verdict rules read.

This is the verdict engine's own reader (``reachwatch.observations.flatten`` stays the public,
complete one). It reads the same fields the same way - an absent or malformed value is "unknown"
(``None``), nothing raises - but skips what no rule looks at: late duplicate DNS answers, DoH
lookups and, when a getaddrinfo-like lookup exists, every other engine (OONI's classic filter,
see ``verdict.dns``); the controls are wrapped, not parsed (``verdict.control``); a response's
body, title and header names are only read for the deciding response (``HTTPTransaction``).

Hot loops test the common well-formed case inline (``type(x) is int``) and fall back to the
``observations.text`` readers, so every malformed shape is read exactly as ``flatten`` reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from reachwatch.observations import HTTPTransaction, TCPConnect, TLSHandshake
from reachwatch.observations.parse import answer_addrs, inferred_depths
from reachwatch.observations.text import (
    NO_TAGS,
    as_failure,
    as_int,
    cached_tag_values,
    norm_host,
    tag_values,
    url_parts,
)
from reachwatch.verdict.control import Hop, hops_of
from reachwatch.verdict.dns import SYSTEM_ENGINES, Evidence

MAPS: Final = (dict, Mapping)  # dict first: JSON gives dicts (see observations.text)
EMPTY: Final[Mapping[str, Any]] = MappingProxyType({})
CONNECT_FAILED: Final = "unknown_failure: connect failed"


@dataclass(slots=True)
class Lookup:
    """A resolver answer (or failure) of the system resolver: the addresses the page used."""

    depth: int
    hostname: str
    query_type: str
    failure: str | None
    addrs: tuple[str, ...]

    def __init__(
        self, depth: int, hostname: str, query_type: str, failure: str | None, addrs: tuple[str, ...]
    ) -> None:
        # by hand, so that mypyc compiles it (see observations.records)
        self.depth = depth
        self.hostname = hostname
        self.query_type = query_type
        self.failure = failure
        self.addrs = addrs


@dataclass(slots=True)
class Reading:
    """What the rules can look at, read once per measurement."""

    test_name: str | None
    has_test_keys: bool
    url: str | None = None
    hostname: str = ""
    lookups: list[Lookup] = field(default_factory=list)  # system-resolver lookups only
    tcp: list[TCPConnect] = field(default_factory=list)
    tls: list[TLSHandshake] = field(default_factory=list)
    http: list[HTTPTransaction] = field(default_factory=list)
    tls_by_tx: dict[int, TLSHandshake] = field(default_factory=dict)  # the last one per transaction
    http_by_tx: dict[int, HTTPTransaction] = field(default_factory=dict)
    hops: list[Hop | None] = field(default_factory=list)  # index = depth; [0] is test_keys.control
    http_experiment_failure: str | None = None  # legacy top-level failure (no requests kept)
    _evidence: Evidence | None = None

    def __init__(
        self,
        test_name: str | None,
        has_test_keys: bool,
        url: str | None = None,
        hostname: str = "",
        lookups: list[Lookup] | None = None,
        tcp: list[TCPConnect] | None = None,
        tls: list[TLSHandshake] | None = None,
        http: list[HTTPTransaction] | None = None,
        tls_by_tx: dict[int, TLSHandshake] | None = None,
        http_by_tx: dict[int, HTTPTransaction] | None = None,
        hops: list[Hop | None] | None = None,
        http_experiment_failure: str | None = None,
        _evidence: Evidence | None = None,
    ) -> None:
        # by hand, so that mypyc compiles it (see observations.records)
        self.test_name = test_name
        self.has_test_keys = has_test_keys
        self.url = url
        self.hostname = hostname
        self.lookups = [] if lookups is None else lookups
        self.tcp = [] if tcp is None else tcp
        self.tls = [] if tls is None else tls
        self.http = [] if http is None else http
        self.tls_by_tx = {} if tls_by_tx is None else tls_by_tx
        self.http_by_tx = {} if http_by_tx is None else http_by_tx
        self.hops = [] if hops is None else hops
        self.http_experiment_failure = http_experiment_failure
        self._evidence = _evidence

    def hop(self, depth: int) -> Hop | None:
        """The control of this hop, or None (no such hop or no control)."""
        return self.hops[depth] if 0 <= depth < len(self.hops) else None

    def evidence(self) -> Evidence:
        """What else validates a DNS answer (ASNs, verified TLS), built when first needed."""
        if self._evidence is None:
            self._evidence = Evidence(self.hops, self.tls)
        return self._evidence


def read(measurement: Any) -> Reading:
    """Read one measurement (any version, any shape). Never raises on bad input."""
    if not isinstance(measurement, MAPS):
        return Reading(None, False)
    raw_input = measurement.get("input")
    if isinstance(raw_input, list):  # some old reports carry the input as a list
        raw_input = raw_input[0] if raw_input else None
    url = raw_input if isinstance(raw_input, str) else None
    hostname = url_parts(url)[1]
    test_name = measurement.get("test_name")
    test_name = test_name if isinstance(test_name, str) else None
    tk = measurement.get("test_keys")
    if not isinstance(tk, MAPS):
        return Reading(test_name, False, url, hostname)
    get = tk.get
    legacy_failure = get("http_experiment_failure")
    tls_by_tx: dict[int, TLSHandshake] = {}
    http_by_tx: dict[int, HTTPTransaction] = {}
    return Reading(
        test_name,
        True,
        url,
        hostname,
        _lookups(get("queries")),
        _connects(get("tcp_connect")),
        _handshakes(get("tls_handshakes"), tls_by_tx),
        _transactions(get("requests"), http_by_tx),
        tls_by_tx,
        http_by_tx,
        hops_of(tk, hostname),
        legacy_failure if isinstance(legacy_failure, str) and legacy_failure else None,
    )


def _lookups(entries: Any) -> list[Lookup]:
    """OONI's classic filter: getaddrinfo-like lookups, or every non-DoH one when there is none."""
    if not isinstance(entries, list):
        return []
    system: list[Lookup] = []
    other: list[Lookup] | None = None  # non-system lookups, while there is no system one
    for q in entries:
        if not isinstance(q, MAPS):
            continue
        get = q.get
        engine = get("engine")
        engine = engine if isinstance(engine, str) else ""
        is_system = engine in SYSTEM_ENGINES
        if not is_system and (system or engine == "doh"):
            continue  # never chosen
        hostname, query_type, failure, tags = get("hostname"), get("query_type"), get("failure"), get("tags")
        try:
            depth = (cached_tag_values(tuple(tags)) if isinstance(tags, list) else NO_TAGS)[0]
        except TypeError:  # an unhashable (malformed) tag
            depth = tag_values(tags)[0]
        lookup = Lookup(
            depth or 0,
            norm_host(hostname) if isinstance(hostname, str) else "",
            query_type if isinstance(query_type, str) else "",
            None if failure is None else as_failure(failure),
            answer_addrs(get("answers")),
        )
        if is_system:
            system.append(lookup)
        elif other is None:
            other = [lookup]
        else:
            other.append(lookup)
    return system or other or []


def _connects(entries: Any) -> list[TCPConnect]:
    if not isinstance(entries, list):
        return []
    out = []
    for t in entries:
        if not isinstance(t, MAPS):
            continue
        get = t.get
        ip, port = get("ip"), get("port")
        if type(port) is not int:
            port = as_int(port)
        if not ip or not isinstance(ip, str) or port is None:
            continue
        status = get("status")
        if not isinstance(status, MAPS):
            status = EMPTY
        failure = status.get("failure")
        if failure is not None:
            failure = as_failure(failure)
        elif status.get("success") is False:
            failure = CONNECT_FAILED
        tags = get("tags")
        try:
            depth, fetch = cached_tag_values(tuple(tags)) if isinstance(tags, list) else NO_TAGS
        except TypeError:  # an unhashable (malformed) tag
            depth, fetch = tag_values(tags)
        tx = get("transaction_id")
        if tx is not None and type(tx) is not int:
            tx = as_int(tx)
        out.append(TCPConnect(ip, port, failure, depth or 0, tx, fetch))
    return out


def _handshakes(entries: Any, by_tx: dict[int, TLSHandshake]) -> list[TLSHandshake]:
    if not isinstance(entries, list):
        return []
    out = []
    for s in entries:
        if not isinstance(s, MAPS):
            continue
        get = s.get
        address, server_name = get("address"), get("server_name")
        address = address if isinstance(address, str) else ""
        tags = get("tags")
        try:
            depth, fetch = cached_tag_values(tuple(tags)) if isinstance(tags, list) else NO_TAGS
        except TypeError:  # an unhashable (malformed) tag
            depth, fetch = tag_values(tags)
        failure, tx, received = get("failure"), get("transaction_id"), get("x_bytes_received")
        if tx is not None and type(tx) is not int:
            tx = as_int(tx)
        handshake = TLSHandshake(
            address,
            address.rsplit(":", 1)[0].strip("[]") if address else "",
            norm_host(server_name) if isinstance(server_name, str) else "",
            None if failure is None else as_failure(failure),
            depth or 0,
            tx,
            fetch,
            received if received is None or type(received) is int else as_int(received),
            get("no_tls_verify") is True,
        )
        out.append(handshake)
        if tx is not None:
            by_tx[tx] = handshake
    return out


def _transactions(entries: Any, by_tx: dict[int, HTTPTransaction]) -> list[HTTPTransaction]:
    """``requests`` is newest first: without depth tags, the depth is inferred from the URLs
    (see ``observations.parse``). The response is kept raw: only the deciding one is read."""
    if not isinstance(entries, list):
        return []
    out = []
    inferred: list[int] | None = None
    for index, r in enumerate(entries):
        if not isinstance(r, MAPS):
            continue
        get = r.get
        request, response = get("request"), get("response")
        request = request if isinstance(request, MAPS) else EMPTY
        response = response if isinstance(response, MAPS) else EMPTY
        url = request.get("url")
        url = url if isinstance(url, str) else ""
        scheme, host = url_parts(url)
        code = response.get("code")
        if type(code) is not int:
            code = as_int(code)
        tags = get("tags")
        try:
            depth = (cached_tag_values(tuple(tags)) if isinstance(tags, list) else NO_TAGS)[0]
        except TypeError:  # an unhashable (malformed) tag
            depth = tag_values(tags)[0]
        if depth is None:
            inferred = inferred or inferred_depths(entries)
            depth = inferred[index]
        failure, tx, received = get("failure"), get("transaction_id"), get("x_bytes_received")
        if tx is not None and type(tx) is not int:
            tx = as_int(tx)
        transaction = HTTPTransaction(
            url,
            scheme,
            host,
            None if failure is None else as_failure(failure),
            code if code and code > 0 else None,
            response.get("body_is_truncated") is True,
            depth,
            tx,
            received if received is None or type(received) is int else as_int(received),
            response,
        )
        out.append(transaction)
        if tx is not None:
            by_tx[tx] = transaction
    return out
