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

from dataclasses import dataclass
from typing import Literal

from reachwatch.observations import HTTPTransaction, TCPConnect, TLSHandshake
from reachwatch.verdict.bogon import is_loopback
from reachwatch.verdict.control import Expect, Hop
from reachwatch.verdict.dns import is_aaaa_no_answer
from reachwatch.verdict.reader import Lookup, Reading

Kind = Literal["final", "http", "tls", "tcp", "dns", "dns-loopback"]
__all__ = ["Endpoint", "Event", "Expect", "Kind", "endpoints", "find_event"]


#: (depth, TCP connect, its TLS handshake, its HTTP transaction): a plain tuple, built per endpoint
Endpoint = tuple[int, TCPConnect | None, TLSHandshake | None, HTTPTransaction | None]


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
    control_failure: str | None = None  # the control's failure of the same step (tcp, tls)

    def __init__(
        self,
        kind: Kind,
        depth: int,
        failure: str | None,
        control: Expect,
        control_http: Expect,
        scheme: str = "",
        tls_ok: bool = False,
        status_code: int | None = None,
        bytes_received: int | None = None,
        control_dns_empty: bool = False,
        control_loopback: bool = False,
        http: HTTPTransaction | None = None,
        control_failure: str | None = None,
    ) -> None:
        # by hand, so that mypyc compiles it (see observations.records)
        self.kind = kind
        self.depth = depth
        self.failure = failure
        self.control = control
        self.control_http = control_http
        self.scheme = scheme
        self.tls_ok = tls_ok
        self.status_code = status_code
        self.bytes_received = bytes_received
        self.control_dns_empty = control_dns_empty
        self.control_loopback = control_loopback
        self.http = http
        self.control_failure = control_failure


def endpoints(reading: Reading) -> list[Endpoint]:
    """The classic filter's endpoints, joined with their TLS handshake and HTTP transaction."""
    known: set[str] = set()
    for q in reading.lookups:
        if q.failure is None:
            known.update(q.addrs)
    tls_by_tx, http_by_tx = reading.tls_by_tx, reading.http_by_tx
    tcp_txs = set()
    out: list[Endpoint] = []
    for t in reading.tcp:
        tx = t.transaction_id
        if tx is not None:
            tcp_txs.add(tx)
        if t.fetch_body is False or (known and t.ip not in known):
            continue
        if tx is None:
            out.append((t.depth, t, None, None))
        else:
            out.append((t.depth, t, tls_by_tx.get(tx), http_by_tx.get(tx)))
    for h in reading.http:
        if h.transaction_id is None or h.transaction_id not in tcp_txs:
            out.append((h.depth, None, None, h))
    if (
        not tcp_txs
        and not reading.http
        and reading.http_experiment_failure
        and not _resolved_nothing(reading)
    ):
        out.append((0, None, None, _legacy_failure(reading, reading.http_experiment_failure)))
    return out


def _resolved_nothing(reading: Reading) -> bool:
    """Every lookup of the first hop failed: no address, so no request was sent, and the
    top-level ``http_experiment_failure`` is the resolver's failure (as our probe and OONI's
    v0.5 write it), for the DNS event to judge, not an HTTP failure. Judged as an HTTP one, a
    probe whose resolver timed out on a name the control found not to exist was ``site.down.http``
    (the page failed for both), where ``dns.timeout`` says what happened."""
    first = [q for q in reading.lookups if q.depth == 0]
    return bool(first) and all(q.failure is not None and not q.addrs for q in first)


def _legacy_failure(reading: Reading, failure: str) -> HTTPTransaction:
    """Probes before v0.5 without ``requests``: the top-level ``http_experiment_failure``."""
    return HTTPTransaction(
        url=reading.url or "",
        scheme="",
        hostname=reading.hostname,
        failure=failure,
        status_code=None,
        body_is_truncated=False,
        depth=0,
        transaction_id=None,
        bytes_received=None,
        response={},
    )


def find_event(reading: Reading, eps: list[Endpoint]) -> Event | None:
    """The deciding event: hops from the last to the first (see the module docstring)."""
    depths = set()
    for e in eps:
        depths.add(e[0])
    for q in reading.lookups:
        depths.add(q.depth)
    if len(depths) == 1:  # the common case: no redirect
        return _at_depth(reading, eps, depths.pop())
    for depth in sorted(depths, reverse=True):
        event = _at_depth(reading, [e for e in eps if e[0] == depth], depth)
        if event is not None:
            return event
    return None


def _at_depth(reading: Reading, eps: list[Endpoint], depth: int) -> Event | None:
    hops = reading.hops
    hop, first = (hops[depth] if depth < len(hops) else None), hops[0]
    page_control = hop if hop is not None else first
    page: Expect = page_control.page if page_control is not None else "missing"
    return (
        _http_event(eps, depth, page, page_control)
        or _tls_event(eps, depth, page, hop, first)
        or _tcp_event(eps, depth, page, hop, first)
        or _dns_event(reading.lookups, depth, page, hop, first)
    )


def _http_event(eps: list[Endpoint], depth: int, page: Expect, page_control: Hop | None) -> Event | None:
    """Successes first, newest first: a final response (2xx/4xx/5xx), judged against the control's
    page, or the first failure, against the control's ``page`` outcome."""
    with_http = [e for e in eps if e[3] is not None]
    if len(with_http) > 1:
        with_http.sort(key=_by_http_failure)
    for _, tcp, tls, h in with_http:
        assert h is not None
        tls_ok = tls.failure is None if tls is not None else (h.scheme == "https" and tcp is None)
        if h.failure is None:
            if h.status_code is not None and h.status_code // 100 in (2, 4, 5):
                # a control page with no status code (and no failure: malformed) is nothing to
                # compare a final response with
                unreadable = page == "ok" and page_control is not None and page_control.http is None
                seen: Expect = "missing" if unreadable else page
                return Event("final", depth, None, seen, seen, h.scheme, tls_ok, h.status_code, http=h)
            continue
        return Event(
            "http", depth, h.failure, page, page, h.scheme, False, h.status_code, h.bytes_received, http=h
        )
    return None


def _tls_event(
    eps: list[Endpoint], depth: int, page: Expect, hop: Hop | None, first: Hop | None
) -> Event | None:
    failed = [tls for _, _, tls, http in eps if http is None and tls is not None and tls.failure]
    if not failed:
        return None
    s = failed[0] if len(failed) == 1 else min(failed, key=_by_failure)
    ctrl_failure = None
    for control in (hop, first):  # OONI matches by address: the hop's control, then the first
        outcome = control.tls_outcome(s.address) if control is not None else None
        if outcome is not None and outcome[0] == s.server_name:
            ctrl: Expect = "failed" if outcome[1] else "ok"
            ctrl_failure = outcome[1]
            break
    else:
        ctrl = "missing"
    return Event(
        "tls", depth, s.failure, ctrl, page, "https", bytes_received=s.bytes_received,
        control_failure=ctrl_failure,
    )  # fmt: skip


def _tcp_event(
    eps: list[Endpoint], depth: int, page: Expect, hop: Hop | None, first: Hop | None
) -> Event | None:
    failed = [
        tcp for _, tcp, tls, http in eps if http is None and tls is None and tcp is not None and tcp.failure
    ]
    if not failed:
        return None
    t = failed[0] if len(failed) == 1 else min(failed, key=_by_failure)
    address = t.address
    ctrl: Expect = "missing"
    ctrl_failure = None
    for control in (hop, first):
        failure = control.tcp_failure(address) if control is not None else False
        if failure is not False:
            ctrl = "failed" if failure else "ok"
            ctrl_failure = failure
            break
    return Event("tcp", depth, t.failure, ctrl, page, control_failure=ctrl_failure)


def _dns_event(
    lookups: list[Lookup], depth: int, page: Expect, hop: Hop | None, first: Hop | None
) -> Event | None:
    """Successes first; a loopback-only answer or a failure decides, judged by the control's DNS."""
    at_depth = [q for q in lookups if q.depth == depth and not is_aaaa_no_answer(q)]
    for q in sorted(at_depth, key=lambda q: q.failure or ""):
        control = _dns_control(q, hop, first)
        ctrl_dns = control.dns if control is not None else None
        ctrl: Expect = "missing" if ctrl_dns is None else ("failed" if ctrl_dns.failure else "ok")
        ctrl_addrs = ctrl_dns.addrs if ctrl_dns is not None else ()
        if q.failure is None:
            if q.addrs and ctrl == "ok" and ctrl_addrs and all(map(is_loopback, q.addrs)):
                loop = all(map(is_loopback, ctrl_addrs))
                return Event("dns-loopback", depth, None, ctrl, page, control_loopback=loop)
            continue
        return Event(
            "dns", depth, q.failure, ctrl, page, control_dns_empty=ctrl == "ok" and not ctrl_addrs,
            control_failure=ctrl_dns.failure if ctrl_dns is not None else None,
        )  # fmt: skip
    return None


def _by_http_failure(e: Endpoint) -> tuple[str, int]:
    h = e[3]
    assert h is not None
    return (h.failure or "", -(h.transaction_id or 0))


def _by_failure(x: TCPConnect | TLSHandshake | None) -> tuple[str, int]:
    return (x.failure or "", -(x.transaction_id or 0)) if x is not None else ("", 0)


def _dns_control(q: Lookup, hop: Hop | None, first: Hop | None) -> Hop | None:
    for control in (hop, first):
        if control is not None and control.hostname == q.hostname and control.dns is not None:
            return control
    return None
