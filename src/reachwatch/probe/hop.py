"""One hop of a redirect chain: DNS, the control request, TCP/TLS to every address, one GET.

The control helper is asked as soon as DNS is done, so it works while the probe connects; the
GET goes over the first endpoint that completed its TCP (and TLS) step, while the others finish.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from reachwatch.failures import classify
from reachwatch.probe import dns, dnsudp, http, tcp, tls
from reachwatch.probe.config import MAX_ADDRESSES, ProbeConfig
from reachwatch.probe.control_client import ControlClient
from reachwatch.probe.stream import ByteStream, TcpStream
from reachwatch.probe.trace import Trace
from reachwatch.urls import is_https, is_ip_literal

Answer = tuple[dict[str, Any] | None, str | None]


@dataclass(slots=True)
class Hop:
    url: str
    depth: int
    queries: list[dict[str, Any]] = field(default_factory=list)
    tcp_connect: list[dict[str, Any]] = field(default_factory=list)
    tls_handshakes: list[dict[str, Any]] = field(default_factory=list)
    request: dict[str, Any] | None = None  # only when a GET was sent, as in OONI's v0.5 format
    failure: str | None = None  # why this hop has no response: DNS, TCP or TLS, or the GET's own
    http: http.HttpResult | None = None
    udp: dnsudp.UdpLookup | None = None
    connection_ids: dict[int, int] = field(default_factory=dict)  # id(TCP stream) -> transaction id
    control: asyncio.Task[Answer] | None = None


def url_port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


async def resolve(hop: Hop, host: str, cfg: ProbeConfig, trace: Trace) -> tuple[list[str], str | None]:
    """System resolver and the UDP resolver at once; the union of their addresses, system first."""
    if is_ip_literal(host):
        return [host], None
    steps: list[Any] = []
    if cfg.use_system_resolver:
        steps.append(dns.system_lookup(host, timeout=cfg.timeouts.dns, trace=trace, depth=hop.depth))
    if cfg.resolver is not None:
        steps.append(_udp(hop, host, cfg, trace))
    results = await asyncio.gather(*steps)
    addrs: list[str] = []
    failure: str | None = None
    for _addrs, entries in ((r[0], r[1] if isinstance(r[1], list) else [r[1]]) for r in results):
        for entry in entries:
            hop.queries.append(entry)
            failure = failure or entry["failure"]
            for ip in dns.addresses_of(entry):
                if ip not in addrs:
                    addrs.append(ip)
    return addrs[:MAX_ADDRESSES], None if addrs else (failure or "dns_no_answer")


async def _udp(hop: Hop, host: str, cfg: ProbeConfig, trace: Trace) -> tuple[list[str], list[dict[str, Any]]]:
    assert cfg.resolver is not None
    try:
        hop.udp = await dnsudp.start_udp_lookup(host, cfg.resolver, trace, hop.depth)
    except OSError as exc:
        now = trace.now()
        return [], [
            dns.query_entry(
                host,
                qtype,
                "udp",
                tcp.endpoint(*cfg.resolver),
                failure=classify(exc),
                answers=[],
                t0=now,
                t=now,
                depth=hop.depth,
                tid=trace.next_id(),
            )
            for qtype in dnsudp.QUERY_TYPES
        ]
    return [], await dnsudp.wait_answered(hop.udp, cfg.timeouts.dns)


async def measure_hop(
    url: str,
    depth: int,
    cfg: ProbeConfig,
    trace: Trace,
    control: ControlClient | None,
    *,
    resolved: tuple[list[str], str | None] | None = None,
) -> Hop:
    """``resolved``: addresses (and DNS failure) the caller already has; no lookup is made then."""
    hop = Hop(url=url, depth=depth)
    host = urlsplit(url).hostname or ""
    port = url_port(url)
    if resolved is None:
        addrs, dns_failure = await resolve(hop, host, cfg, trace)
    else:
        addrs, dns_failure = resolved[0][:MAX_ADDRESSES], resolved[1]
    if control is not None:
        hop.control = asyncio.create_task(control.ask(url, [tcp.endpoint(ip, port) for ip in addrs]))
    if not addrs:
        hop.failure = dns_failure or "dns_no_answer"
        return hop
    https = is_https(url)  # a redirect may say HTTPS://: TLS on 443 all the same
    attempts = [asyncio.create_task(_connect(hop, ip, port, host, https, cfg, trace)) for ip in addrs]
    get_task: asyncio.Task[http.HttpResult] | None = None
    first_failure: str | None = None
    for next_done in asyncio.as_completed(attempts):
        streams, failure = await next_done
        if streams is None:
            first_failure = first_failure or failure
        elif get_task is None:
            stream, raw = streams
            get_task = asyncio.create_task(
                http.get(stream, raw, url, timeout=cfg.timeouts.http, body_limit=cfg.body_limit,
                         trace=trace, depth=depth, tid=_connection_id(hop, raw))
            )  # fmt: skip
        else:
            streams[0].close()
    hop.tcp_connect.sort(key=lambda e: e["transaction_id"])
    hop.tls_handshakes.sort(key=lambda e: e["transaction_id"])
    if get_task is None:
        hop.failure = first_failure or "unknown_failure: no endpoint"
        return hop
    hop.http = await get_task
    hop.request = hop.http.entry
    hop.failure = hop.http.failure
    return hop


def _connection_id(hop: Hop, raw: TcpStream) -> int | None:
    """The transaction id of the TCP connect that made ``raw``."""
    return hop.connection_ids.get(id(raw))


async def _connect(
    hop: Hop, ip: str, port: int, host: str, https: bool, cfg: ProbeConfig, trace: Trace
) -> tuple[tuple[ByteStream, TcpStream] | None, str | None]:
    """TCP (then TLS for https) to one address; the observations go into the hop."""
    refused = cfg.refuse_address(ip) if cfg.refuse_address is not None else None
    if refused is not None:
        hop.tcp_connect.append(tcp.refused_entry(ip, port, refused, trace=trace, depth=hop.depth))
        return None, refused
    raw, entry = await tcp.connect(ip, port, timeout=cfg.timeouts.tcp, trace=trace, depth=hop.depth)
    hop.tcp_connect.append(entry)
    if raw is None:
        return None, entry["status"]["failure"]
    hop.connection_ids[id(raw)] = entry["transaction_id"]
    if not https:
        return (raw, raw), None
    stream, tls_entry = await tls.handshake(
        raw, ip, port, host, context=cfg.ssl_context, timeout=cfg.timeouts.tls, trace=trace,
        depth=hop.depth, tid=entry["transaction_id"],
    )  # fmt: skip
    hop.tls_handshakes.append(tls_entry)
    if stream is None:
        return None, tls_entry["failure"]
    return (stream, raw), None
