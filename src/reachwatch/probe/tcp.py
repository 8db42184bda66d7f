"""Step: TCP connect to one ip:port, observed as an OONI ``tcp_connect`` entry."""

from __future__ import annotations

import asyncio
from typing import Any

from reachwatch.failures import classify
from reachwatch.probe.stream import TcpStream, open_tcp
from reachwatch.probe.trace import Trace, depth_tags


async def connect(
    ip: str, port: int, *, timeout: float, trace: Trace, depth: int
) -> tuple[TcpStream | None, dict[str, Any]]:
    """Connect; return the stream (None on failure) and the observation."""
    tid = trace.next_id()
    t0 = trace.now()
    stream: TcpStream | None = None
    failure: str | None = None
    try:
        async with asyncio.timeout(timeout):
            stream = await open_tcp(ip, port)
    except Exception as exc:
        failure = classify(exc)
    entry = {
        "ip": ip,
        "port": port,
        "status": {"success": failure is None, "failure": failure, "blocked": None},
        "t0": t0,
        "t": trace.now(),
        "tags": depth_tags(depth),
        "transaction_id": tid,
    }
    return stream, entry


def endpoint(ip: str, port: int) -> str:
    """``ip:port``, with brackets for IPv6, as OONI writes endpoints."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def refused_entry(ip: str, port: int, failure: str, *, trace: Trace, depth: int) -> dict[str, Any]:
    """A connect we chose not to make (the control helper's safety rule), with the reason."""
    now = trace.now()
    return {
        "ip": ip,
        "port": port,
        "status": {"success": False, "failure": failure, "blocked": None},
        "t0": now,
        "t": now,
        "tags": depth_tags(depth),
        "transaction_id": trace.next_id(),
    }
