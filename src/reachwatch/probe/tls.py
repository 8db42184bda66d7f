"""Step: TLS handshake with SNI over a connected stream, observed as a ``tls_handshakes`` entry."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import ssl
from typing import Any

from reachwatch.failures import classify
from reachwatch.probe.stream import TcpStream, TlsStream
from reachwatch.probe.tcp import endpoint
from reachwatch.probe.trace import Trace, depth_tags


def sni_for(host: str) -> str | None:
    """IP literals are verified against the IP SAN and sent without SNI (as browsers do)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host
    return None


async def handshake(
    raw: TcpStream,
    ip: str,
    port: int,
    server_name: str,
    *,
    context: ssl.SSLContext,
    timeout: float,
    trace: Trace,
    depth: int,
    tid: int | None = None,
) -> tuple[TlsStream | None, dict[str, Any]]:
    """Handshake, verifying against ``context``; the certificates are kept even on failure.

    ``tid``: the transaction id of the TCP connection underneath (OONI joins TCP, TLS and HTTP
    of one connection by it).
    """
    tid = trace.next_id() if tid is None else tid
    t0 = trace.now()
    before = raw.bytes_received
    tls = TlsStream(raw, context, sni_for(server_name) if server_name else None)
    failure: str | None = None
    try:
        async with asyncio.timeout(timeout):
            await tls.handshake()
    except Exception as exc:
        failure = classify(exc)
    sslobj = tls.sslobj
    cipher = sslobj.cipher() if failure is None else None
    entry = {
        "network": "tcp",
        "address": endpoint(ip, port),
        "server_name": server_name,
        "cipher_suite": cipher[0] if cipher else "",
        "tls_version": (sslobj.version() or "") if failure is None else "",
        "negotiated_protocol": (sslobj.selected_alpn_protocol() or "") if failure is None else "",
        "peer_certificates": [
            {"format": "base64", "data": base64.b64encode(der).decode()} for der in tls.peer_chain_der()
        ],
        "failure": failure,
        "no_tls_verify": False,
        "t0": t0,
        "t": trace.now(),
        "tags": depth_tags(depth),
        "transaction_id": tid,
        "x_bytes_received": raw.bytes_received - before,
    }
    if failure is not None:
        raw.close()
        return None, entry
    return tls, entry
