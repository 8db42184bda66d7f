"""A tiny client run inside a lab namespace: ``python client.py '<json list of ops>'``.

Prints one JSON result per op. Each op is ``[kind, *args]``; kinds: ``dns host``,
``connect ip port``, ``tls ip host cafile``, ``http ip host`` (port 80),
``https ip host cafile``, ``dns-burst pattern names count wait``, ``tls-straddled ip host cafile count``. Results name what a user would see: addresses, ``nxdomain``,
``timeout``, ``refused``, ``reset``, ``unreachable``, ``cert: ...``, or a status and a title.
"""

from __future__ import annotations

import errno
import json
import random
import re
import socket
import ssl
import sys
import time
from collections.abc import Callable
from typing import Any

import dns.exception
import dns.message
import dns.query
import dns.rcode

RESOLVER = "100.127.0.53"
TIMEOUT = 1.5


def _error(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"cert: {exc.verify_message}"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, ConnectionResetError):
        return "reset"
    if isinstance(exc, OSError) and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return "unreachable"
    return f"{type(exc).__name__}: {exc}"


def op_dns(host: str) -> dict[str, Any]:
    query = dns.message.make_query(host, "A")
    try:
        reply = dns.query.udp(query, RESOLVER, timeout=TIMEOUT)
    except dns.exception.Timeout:
        return {"error": "timeout"}
    if reply.rcode() == dns.rcode.NXDOMAIN:
        return {"error": "nxdomain"}
    return {"answers": [rd.address for rrset in reply.answer for rd in rrset]}


def op_dns_burst(pattern: str, names: int, count: int, wait: float) -> dict[str, Any]:
    """Send ``count`` A queries at once, without waiting, for ``pattern`` formatted with
    0..names-1 in turn; count the replies within ``wait``."""
    wires = [dns.message.make_query(pattern.format(i), "A").to_wire() for i in range(names)]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, 33, 1 << 24)  # SO_RCVBUFFORCE: this client must lose nothing
    sock.connect((RESOLVER, 53))
    for i in range(count):  # as fast as the socket takes them: ids 0..count-1
        sock.send(i.to_bytes(2, "big") + wires[i % names][2:])
    wanted = set(range(count))
    answered: set[int] = set()
    deadline = time.monotonic() + wait
    while len(answered) < len(wanted) and (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data = sock.recv(4096)
        except TimeoutError:
            break
        reply = dns.message.from_wire(data)
        if reply.rcode() == dns.rcode.NOERROR and reply.answer:
            answered.add(reply.id)
    return {"sent": len(wanted), "answered": len(answered)}


def _connect(ip: str, port: int) -> socket.socket:
    return socket.create_connection((ip, port), timeout=TIMEOUT)


def op_connect(ip: str, port: int) -> dict[str, Any]:
    try:
        _connect(ip, port).close()
    except OSError as exc:
        return {"error": _error(exc)}
    return {"ok": True}


def _tls(ip: str, host: str, cafile: str) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=cafile)
    sock = _connect(ip, 443)
    try:
        return ctx.wrap_socket(sock, server_hostname=host)
    except BaseException:
        sock.close()
        raise


def op_tls(ip: str, host: str, cafile: str) -> dict[str, Any]:
    try:
        _connect(ip, 443).close()
    except OSError as exc:
        return {"error": "connect " + _error(exc)}
    try:
        _tls(ip, host, cafile).close()
    except OSError as exc:
        return {"error": _error(exc)}
    return {"ok": True}


def _get(sock: socket.socket, host: str) -> dict[str, Any]:
    t0 = time.monotonic()
    sock.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    data = b""
    sock.settimeout(10)
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    title = re.search(rb"<title>(.*?)</title>", body)
    return {
        "status": int(head.split(b" ", 2)[1]) if head else 0,
        "title": title.group(1).decode() if title else None,
        "location": next(
            (
                ln.split(b": ", 1)[1].decode()
                for ln in head.split(b"\r\n")
                if ln.lower().startswith(b"location:")
            ),
            None,
        ),
        "bytes": len(body),
        "seconds": round(time.monotonic() - t0, 3),
    }


def op_http(ip: str, host: str) -> dict[str, Any]:
    try:
        with _connect(ip, 80) as sock:
            return _get(sock, host)
    except OSError as exc:
        return {"error": _error(exc)}


def op_https(ip: str, host: str, cafile: str) -> dict[str, Any]:
    try:
        with _tls(ip, host, cafile) as sock:
            return _get(sock, host)
    except OSError as exc:
        return {"error": _error(exc)}


def op_tls_straddled(ip: str, host: str, cafile: str, count: int) -> dict[str, Any]:
    """``count`` handshakes naming ``host``, each after a write of 1-900 bytes (seeded) that stays
    unread on a loopback connection: the thread's page fragment (which holds what TCP sends) then
    keeps advancing instead of starting over, so some ClientHellos straddle two pages, as in a
    busy probe, and reach the router as a packet of two blocks. The results, counted."""
    rnd = random.Random(1)
    ctx = ssl.create_default_context(cafile=cafile)
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[Any] = [listener]
    side: socket.socket | None = None
    seen: dict[str, int] = {}
    for i in range(count):
        if i % 50 == 0:  # a fresh queue before the last one fills
            side = socket.create_connection(listener.getsockname())
            held += [side, listener.accept()[0]]
        assert side is not None
        side.send(b"p" * rnd.randint(1, 900))
        try:
            with _connect(ip, 443) as sock, ctx.wrap_socket(sock, server_hostname=host):
                result = "ok"
        except OSError as exc:
            result = _error(exc)
        seen[result] = seen.get(result, 0) + 1
    for sock in held:
        sock.close()
    return seen


OPS: dict[str, Callable[..., dict[str, Any]]] = {
    "dns": op_dns,
    "dns-burst": op_dns_burst,
    "connect": op_connect,
    "tls": op_tls,
    "http": op_http,
    "https": op_https,
    "tls-straddled": op_tls_straddled,
}

if __name__ == "__main__":
    for kind, *args in json.loads(sys.argv[1]):
        print(json.dumps(OPS[kind](*args)), flush=True)
