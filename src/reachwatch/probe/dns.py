"""Step: DNS through the system resolver (getaddrinfo) and the shapes of ``queries`` entries."""

from __future__ import annotations

import asyncio
import math
import os
import socket
from typing import Any

from reachwatch.failures import MeasurementFailure, classify
from reachwatch.probe.trace import Trace, depth_tags


def address_answer(ip: str, ttl: int | None) -> dict[str, Any]:
    if ":" in ip:
        return {"answer_type": "AAAA", "ipv6": ip, "ttl": ttl}
    return {"answer_type": "A", "ipv4": ip, "ttl": ttl}


def query_entry(
    hostname: str,
    query_type: str,
    engine: str,
    resolver_address: str,
    *,
    failure: str | None,
    answers: list[dict[str, Any]],
    t0: float,
    t: float,
    depth: int,
    tid: int,
) -> dict[str, Any]:
    return {
        "hostname": hostname,
        "query_type": query_type,
        "engine": engine,
        "resolver_address": resolver_address,
        "failure": failure,
        "answers": answers,
        "t0": t0,
        "t": t,
        "tags": depth_tags(depth),
        "transaction_id": tid,
    }


def addresses_of(entry: dict[str, Any]) -> list[str]:
    return [a.get("ipv4") or a.get("ipv6") for a in entry["answers"] if a["answer_type"] in ("A", "AAAA")]


def retry_lost_queries(timeout: float) -> None:
    """Ask the C library's resolver (behind getaddrinfo) to send a query again after 1 s without
    an answer, until ``timeout``, unless the user's RES_OPTIONS says otherwise. Its own default is
    5 s, past the probe's DNS step (4 s): one datagram lost on the way (a home router's forwarder
    drops queries past its limit, 150 at once for dnsmasq) was a DNS timeout, and a timeout the
    control does not see is read as DNS blocking. A censor that drops the query drops every copy.
    Read by glibc (and musl) when a process first resolves: call it before any lookup."""
    attempts = min(5, max(1, math.ceil(timeout)))  # glibc's RES_MAXRETRY is 5
    os.environ.setdefault("RES_OPTIONS", f"timeout:1 attempts:{attempts}")


def _getaddrinfo(hostname: str) -> list[Any]:
    return socket.getaddrinfo(hostname, None, type=socket.SOCK_STREAM)


async def system_lookup(
    hostname: str, *, timeout: float, trace: Trace, depth: int
) -> tuple[list[str], dict[str, Any]]:
    """getaddrinfo through the event loop (the OS resolver); addresses in its order, deduplicated."""
    tid = trace.next_id()
    t0 = trace.now()
    addrs: list[str] = []
    failure: str | None = None
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            # Our own executor, not loop.getaddrinfo: uvloop sends that to libuv's 4-thread pool,
            # where four lookups a censor never answers stall every other lookup behind them.
            infos = await loop.run_in_executor(None, _getaddrinfo, hostname)
        for _family, _type, _proto, _name, sockaddr in infos:
            ip = str(sockaddr[0]).split("%")[0]
            if ip not in addrs:
                addrs.append(ip)
        if not addrs:
            raise MeasurementFailure("dns_no_answer")
    except Exception as exc:
        failure = classify(exc)
    entry = query_entry(
        hostname,
        "ANY",
        "getaddrinfo",
        "",
        failure=failure,
        answers=[address_answer(ip, None) for ip in addrs],
        t0=t0,
        t=trace.now(),
        depth=depth,
        tid=tid,
    )
    return addrs, entry
