"""Find the observation that decides: OONI's "linear" walk of the classic analysis.

Endpoints are the TCP connects to addresses the system resolver returned (minus OONI's
connectivity-check endpoints, tagged ``fetch_body=false``), joined by transaction id with their
TLS handshake and HTTP transaction; HTTP transactions that cannot be joined (probes before
v0.5, which carry no transaction ids) stand alone.

The walk goes from the last redirect hop to the first; within a hop it looks at HTTP, then TLS,
then TCP, then DNS, successes before failures. The first final response (2xx, 4xx, 5xx) or
failure found is the :class:`Event` the rules judge, together with what the control saw for
the same step ("missing", "ok" or "failed").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from reachwatch.observations import (
    Control,
    ControlHTTP,
    DNSLookup,
    HTTPTransaction,
    Observations,
    TCPConnect,
    TLSHandshake,
)
from reachwatch.verdict.bogon import is_loopback
from reachwatch.verdict.dns import is_aaaa_no_answer

Expect = Literal["missing", "ok", "failed"]
Kind = Literal["final", "http", "tls", "tcp", "dns", "dns-loopback"]


@dataclass(slots=True)  # not frozen: cheaper to build (see observations.records)
class Endpoint:
    depth: int
    tcp: TCPConnect | None
    tls: TLSHandshake | None
    http: HTTPTransaction | None


@dataclass(slots=True)  # not frozen: cheaper to build (see observations.records)
class Event:
    kind: Kind
    depth: int
    failure: str | None
    control: Expect  # the control's outcome for the same step (tcp, tls, dns; http for http)
    control_http: Expect  # the control's outcome for the page
    scheme: str = ""
    tls_ok: bool = False  # final response over a successful TLS handshake
    status_code: int | None = None
    bytes_received: int | None = None
    control_dns_empty: bool = False  # control resolved the name to no address
    control_loopback: bool = False  # control resolved loopback addresses only
    http: HTTPTransaction | None = None


def endpoints(obs: Observations, lookups: Iterable[DNSLookup]) -> list[Endpoint]:
    known = {a for q in lookups if q.failure is None for a in q.addrs}
    tls_by_tx = {s.transaction_id: s for s in obs.tls if s.transaction_id is not None}
    http_by_tx = {h.transaction_id: h for h in obs.http if h.transaction_id is not None}
    tcp_txs = {t.transaction_id for t in obs.tcp if t.transaction_id is not None}
    out = []
    for t in obs.tcp:
        if t.fetch_body is False or (known and t.ip not in known):
            continue
        tx = t.transaction_id
        out.append(
            Endpoint(t.depth, t, tls_by_tx.get(tx), http_by_tx.get(tx))
            if tx is not None
            else Endpoint(t.depth, t, None, None)
        )
    for h in obs.http:
        if h.transaction_id is None or h.transaction_id not in tcp_txs:
            out.append(Endpoint(h.depth, None, None, h))
    legacy = all(t.transaction_id is None for t in obs.tcp)  # before v0.5: no transaction ids
    if legacy and not obs.http and "http_experiment_failure" in obs.extra:  # no requests kept
        failed = HTTPTransaction(
            url=obs.input or "",
            scheme="",
            hostname=obs.hostname,
            failure=obs.extra["http_experiment_failure"],
            status_code=None,
            body_is_truncated=False,
            depth=0,
            transaction_id=None,
            bytes_received=None,
            response={},
        )
        out.append(Endpoint(0, None, None, failed))
    return out


def find_event(obs: Observations, eps: list[Endpoint], lookups: tuple[DNSLookup, ...]) -> Event | None:
    depths = sorted({e.depth for e in eps} | {q.depth for q in lookups}, reverse=True)
    for depth in depths:
        event = _at_depth(obs, [e for e in eps if e.depth == depth], lookups, depth)
        if event is not None:
            return event
    return None


def _at_depth(
    obs: Observations, eps: list[Endpoint], lookups: tuple[DNSLookup, ...], depth: int
) -> Event | None:
    hop, first = obs.control_for(depth), obs.control_for(0)
    page_control = hop or first
    page = _expect_http(page_control.http if page_control is not None else None)
    with_http = sorted(
        (e for e in eps if e.http is not None),
        key=lambda e: (e.http.failure or "", -(e.http.transaction_id or 0)),  # type: ignore[union-attr]
    )
    for e in with_http:
        h = e.http
        assert h is not None
        tls_ok = e.tls.failure is None if e.tls is not None else (h.scheme == "https" and e.tcp is None)
        if h.failure is None:
            if h.status_code is not None and h.status_code // 100 in (2, 4, 5):
                return Event("final", depth, None, page, page, h.scheme, tls_ok, h.status_code, http=h)
            continue
        return Event(
            "http", depth, h.failure, page, page, h.scheme, False, h.status_code, h.bytes_received, http=h
        )
    tls_failed = sorted((e.tls for e in eps if e.http is None and e.tls and e.tls.failure), key=_by_failure)
    if tls_failed:
        s = tls_failed[0]
        tls_ctrl = _lookup_tls(s, hop, first)
        return Event("tls", depth, s.failure, tls_ctrl, page, "https", bytes_received=s.bytes_received)
    tcp_failed = sorted(
        (e.tcp for e in eps if e.http is None and e.tls is None and e.tcp and e.tcp.failure), key=_by_failure
    )
    if tcp_failed:
        t = tcp_failed[0]
        tcp_ctrl = _expect_failure(_lookup_tcp(t.address, hop, first))
        return Event("tcp", depth, t.failure, tcp_ctrl, page)
    at_depth = [q for q in lookups if q.depth == depth and not is_aaaa_no_answer(q)]
    for q in sorted(at_depth, key=lambda q: q.failure or ""):
        control = _dns_control(q, hop, first)
        if control is None or control.dns is None:
            ctrl: Expect = "missing"
        else:
            ctrl = "failed" if control.dns.failure else "ok"
        ctrl_addrs = control.dns.addrs if control and control.dns else ()
        if q.failure is None:
            if q.addrs and ctrl == "ok" and ctrl_addrs and all(map(is_loopback, q.addrs)):
                loop = all(map(is_loopback, ctrl_addrs))
                return Event("dns-loopback", depth, None, ctrl, page, control_loopback=loop)
            continue
        return Event("dns", depth, q.failure, ctrl, page, control_dns_empty=ctrl == "ok" and not ctrl_addrs)
    return None


def _by_failure(x: TCPConnect | TLSHandshake | None) -> tuple[str, int]:
    return (x.failure or "", -(x.transaction_id or 0)) if x is not None else ("", 0)


def _expect_http(http: ControlHTTP | None) -> Expect:
    if http is None:
        return "missing"
    return "failed" if http.failure else "ok"


def _expect_failure(value: str | bool | None) -> Expect:
    if value is False:
        return "missing"
    return "failed" if value else "ok"


def _lookup_tcp(address: str, hop: Control | None, first: Control | None) -> str | bool | None:
    """The control's failure for an endpoint (None = success), False when it has no entry."""
    for control in (hop, first):
        if control is not None and address in control.tcp:
            return control.tcp[address]
    return False


def _lookup_tls(s: TLSHandshake, hop: Control | None, first: Control | None) -> Expect:
    for control in (hop, first):
        if control is not None and s.address in control.tls:
            server_name, failure = control.tls[s.address]
            if server_name == s.server_name:
                return "failed" if failure else "ok"
    return "missing"


def _dns_control(q: DNSLookup, hop: Control | None, first: Control | None) -> Control | None:
    for control in (hop, first):
        if control is not None and control.hostname == q.hostname and control.dns is not None:
            return control
    return None
