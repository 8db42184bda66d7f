"""The control measurement: what the URL looks like from the helper's network.

The same step modules as the probe (reachwatch.probe.dns/tcp/tls, and the probe's redirect
following for the fetch), so there is one implementation of DNS, TCP, TLS and HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from reachwatch.probe import dns, tcp, tls
from reachwatch.probe.config import MAX_ADDRESSES, ProbeConfig, Timeouts
from reachwatch.probe.hop import url_port
from reachwatch.probe.measure import follow
from reachwatch.probe.trace import Trace
from reachwatch.urls import is_https, is_ip_literal

CONTROL_BODY_LIMIT = 1024 * 1024
TOTAL_TIMEOUT = 30.0
_TITLE = re.compile(rb"(?i)<title>([^<]{1,128})</title>")
FLAG_RESOLVER, FLAG_PROBE, FLAG_HTTPS = 1, 2, 4


@dataclass(frozen=True, slots=True)
class ThRequest:
    url: str
    endpoints: list[tuple[str, int]]  # the probe's, validated


def parse_endpoint(text: str) -> tuple[str, int]:
    """``ip:port`` or ``[ipv6]:port``; ValueError with a message otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep:
        raise ValueError(f"endpoint {text!r} is not ip:port")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    number = int(port)
    if not 0 < number < 65536:
        raise ValueError(f"endpoint {text!r} has a bad port")
    return str(ipaddress.ip_address(host)), number


def title_of(body: bytes) -> str:
    match = _TITLE.search(body)
    return match.group(1).decode("utf-8", "replace").strip() if match else ""


def control_config(cfg: ProbeConfig) -> ProbeConfig:
    """The helper's fetch: system resolver only, a larger body cap, shorter steps."""
    return replace(
        cfg,
        resolver=None,
        use_system_resolver=True,
        body_limit=CONTROL_BODY_LIMIT,
        timeouts=Timeouts(dns=4.0, tcp=5.0, tls=5.0, http=10.0),
    )


async def th_measure(request: ThRequest, cfg: ProbeConfig) -> dict[str, Any]:
    """The OONI test-helper response for ``request``; never raises for network failures."""
    trace = Trace()
    host = urlsplit(request.url).hostname or ""
    port = url_port(request.url)
    response: dict[str, Any] = {
        "tcp_connect": {},
        "tls_handshake": {},
        "http_request": {
            "body_length": -1, "discovered_h3_endpoint": "", "failure": "generic_timeout_error",
            "title": "", "headers": {}, "status_code": -1,
        },
        "dns": {"failure": None, "addrs": []},
        "ip_info": {},
    }  # fmt: skip
    own: list[str] = [host] if is_ip_literal(host) else []
    dns_failure: str | None = None
    if not own:
        own, entry = await dns.system_lookup(host, timeout=cfg.timeouts.dns, trace=trace, depth=0)
        dns_failure = entry["failure"]
        response["dns"] = {"failure": dns_failure, "addrs": own}
    else:
        response["dns"]["addrs"] = own
    endpoints = _union(request.endpoints, [(ip, port) for ip in own])
    # the fetch's first hop connects to every own address: only the probe's others need a check
    fetched = {(ip, port) for ip in own[:MAX_ADDRESSES]}
    tasks = [
        _endpoint(ip, p, host, request.url, cfg, trace, response)
        for ip, p in endpoints
        if (ip, p) not in fetched
    ]
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(TOTAL_TIMEOUT):
            await asyncio.gather(_fetch(request.url, cfg, trace, response, (own, dns_failure)), *tasks)
    for ip, p in endpoints:
        key = tcp.endpoint(ip, p)
        response["tcp_connect"].setdefault(key, {"status": False, "failure": "generic_timeout_error"})
    validated = {
        key.rpartition(":")[0].strip("[]") for key, v in response["tls_handshake"].items() if v["status"]
    }
    probe_ips = {ip for ip, _ in request.endpoints}
    for ip in dict.fromkeys([*own, *probe_ips]):
        flags = (FLAG_RESOLVER if ip in own else 0) | (FLAG_PROBE if ip in probe_ips else 0)
        flags |= FLAG_HTTPS if ip in validated else 0
        response["ip_info"][ip] = {"asn": 0, "flags": flags}
    return response


def _union(*lists: list[tuple[str, int]]) -> list[tuple[str, int]]:
    from reachwatch.control.safety import MAX_ENDPOINTS

    return list(dict.fromkeys(e for endpoints in lists for e in endpoints))[:MAX_ENDPOINTS]


async def _endpoint(
    ip: str, port: int, host: str, url: str, cfg: ProbeConfig, trace: Trace, response: dict[str, Any]
) -> None:
    key = tcp.endpoint(ip, port)
    refused = cfg.refuse_address(ip) if cfg.refuse_address is not None else None
    if refused is not None:
        response["tcp_connect"][key] = {"status": False, "failure": refused}
        return
    raw, entry = await tcp.connect(ip, port, timeout=cfg.timeouts.tcp, trace=trace, depth=0)
    failure = entry["status"]["failure"]
    response["tcp_connect"][key] = {"status": failure is None, "failure": failure}
    if raw is None or not is_https(url):
        if raw is not None:
            raw.close()
        return
    stream, tls_entry = await tls.handshake(
        raw, ip, port, host, context=cfg.ssl_context, timeout=cfg.timeouts.tls, trace=trace, depth=0
    )
    ok = tls_entry["failure"] is None
    response["tls_handshake"][key] = {"server_name": host, "status": ok, "failure": tls_entry["failure"]}
    if stream is not None:
        stream.close()


async def _fetch(
    url: str, cfg: ProbeConfig, trace: Trace, response: dict[str, Any], resolved: tuple[list[str], str | None]
) -> None:
    """GET the URL, following redirects; the first hop uses the lookup already made (no second one)."""
    hops = await follow(url, cfg, trace, None, resolved=resolved)
    for entry in hops[0].tcp_connect:
        failure = entry["status"]["failure"]
        response["tcp_connect"][tcp.endpoint(entry["ip"], entry["port"])] = {
            "status": failure is None,
            "failure": failure,
        }
    for entry in hops[0].tls_handshakes:
        ok = entry["failure"] is None
        response["tls_handshake"][entry["address"]] = {
            "server_name": entry["server_name"],
            "status": ok,
            "failure": entry["failure"],
        }
    last = hops[-1]
    result = last.http
    failure = last.failure
    if result is None or result.status is None:
        response["http_request"] = {**response["http_request"], "failure": failure}
        return
    headers: dict[str, str] = {}
    for name, value in result.headers:
        headers.setdefault(name, value)
    response["http_request"] = {
        "body_length": len(result.body),
        "discovered_h3_endpoint": "",
        "failure": failure,
        "title": title_of(result.body),
        "headers": headers,
        "status_code": result.status,
    }
