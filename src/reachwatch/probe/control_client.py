"""Asking the control helper: the OONI test-helper request over a small keep-alive h11 pool.

Our own pool rather than httpx: at a hundred concurrent requests httpcore's pool bookkeeping
cost more than the measurements themselves (5x slower on loopback).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import h11
import orjson

from reachwatch.failures import MeasurementFailure, classify
from reachwatch.probe.config import make_ssl_context
from reachwatch.probe.http import request_headers
from reachwatch.probe.stream import ByteStream, TlsStream, open_tcp
from reachwatch.probe.tls import sni_for
from reachwatch.urls import is_ip_literal

CONTROL_TIMEOUT = 30.0
MAX_ANSWER_BYTES = 4 * 1024 * 1024


def th_request(url: str, endpoints: list[str]) -> dict[str, Any]:
    """OONI's test-helper request: the URL, the probe's headers and the probe's endpoints."""
    headers = {name: [value] for name, value in request_headers(url) if name != "Host"}
    return {
        "http_request": url,
        "http_request_headers": headers,
        "tcp_connect": endpoints,
        "x_quic_enabled": False,
        # reachwatch's helper answers the address it sees the probe from (x_probe_address): the
        # probe scrubs it from its measurements; OONI's helper ignores the key
        "x_probe_address": True,
    }


def is_th_answer(control: dict[str, Any]) -> bool:
    """Whether a JSON object is a test-helper answer: its sections are there, with the types the
    verdict compares. Anything else (a web server's JSON, a broken helper) would be judged as if
    it were the unfiltered view, e.g. a status code "abc" as a page that differs. OONI's helper is
    written in Go, whose empty maps come out as null: a null ``tcp_connect``, ``tls_handshake`` or
    ``headers`` is an empty one (a real answer of a v0.4 measurement has ``"tcp_connect": null``)."""
    dns, http = control.get("dns"), control.get("http_request")
    tcp, tls = _map_or_null(control.get("tcp_connect")), _map_or_null(control.get("tls_handshake"))
    if not (
        isinstance(dns, dict) and isinstance(http, dict) and isinstance(tcp, dict) and isinstance(tls, dict)
    ):
        return False
    addrs = dns.get("addrs")
    if not (isinstance(addrs, list) or addrs is None) or not all(isinstance(a, str) for a in addrs or []):
        return False
    if not isinstance(dns.get("failure"), str | None):
        return False
    if not all(isinstance(v, dict) for v in (*tcp.values(), *tls.values())):
        return False
    code, length = http.get("status_code"), http.get("body_length")
    numbers = all(isinstance(n, int) and not isinstance(n, bool) for n in (code, length) if n is not None)
    headers = _map_or_null(http.get("headers"))
    return numbers and isinstance(http.get("failure"), str | None) and isinstance(headers, dict)


def _map_or_null(value: Any) -> Any:
    """Go's null for an empty map as the empty map; anything else as it is."""
    return {} if value is None else value


@dataclass(slots=True)
class _Conn:
    stream: ByteStream
    http: h11.Connection


class ControlClient:
    """POSTs test-helper requests to one control URL, at most ``parallel`` at once."""

    def __init__(
        self, url: str, *, parallel: int, timeout: float = CONTROL_TIMEOUT, ca_file: Path | None = None
    ) -> None:
        parts = urlsplit(url)
        self.url = url
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.netloc = parts.netloc.rpartition("@")[2]
        self.timeout = timeout
        self._tls: ssl.SSLContext | None = make_ssl_context(ca_file) if parts.scheme == "https" else None
        self._idle: list[_Conn] = []
        self._slots = asyncio.Semaphore(max(1, parallel))
        self._ip: str | None = None
        #: the addresses the helper saw this probe from (x_probe_address): scrubbed from its
        #: measurements before they are written or sent (:func:`reachwatch.probe.runner.run_share`)
        self.seen_as: set[str] = set()

    async def ask(self, url: str, endpoints: list[str]) -> tuple[dict[str, Any] | None, str | None]:
        """(control, None) or (None, control_failure); never raises for network or helper errors."""
        body = orjson.dumps(th_request(url, endpoints))
        try:
            async with self._slots, asyncio.timeout(self.timeout):
                status, answer = await self._post(body)
        except Exception as exc:
            return None, classify(exc)
        if status != 200:
            return None, "http_request_failed"
        try:
            control = orjson.loads(answer)
        except ValueError:
            return None, "http_invalid_response"
        if not isinstance(control, dict) or not is_th_answer(control):
            return None, "http_invalid_response"
        seen = control.pop("x_probe_address", None)  # not kept in the measurement
        # a probe on the helper's own host is seen from the helper's address: no one's to hide
        if isinstance(seen, str) and is_ip_literal(seen) and seen != self._ip:
            self.seen_as.add(seen)
        return control, None

    async def _post(self, body: bytes) -> tuple[int, bytes]:
        while self._idle:  # a kept-alive connection the helper may have closed meanwhile: retry fresh
            conn = self._idle.pop()
            try:
                return await self._exchange(conn, body)
            except (OSError, EOFError, h11.ProtocolError, MeasurementFailure, ssl.SSLError):
                conn.stream.close()
        return await self._exchange(await self._open(), body)

    async def _open(self) -> _Conn:
        if self._ip is None:
            infos = await asyncio.get_running_loop().getaddrinfo(
                self.host, self.port, type=socket.SOCK_STREAM
            )
            self._ip = str(infos[0][4][0])
        raw = await open_tcp(self._ip, self.port)
        stream: ByteStream = raw
        if self._tls is not None:
            tls = TlsStream(raw, self._tls, sni_for(self.host))
            await tls.handshake()
            stream = tls
        return _Conn(stream, h11.Connection(h11.CLIENT))

    async def _exchange(self, conn: _Conn, body: bytes) -> tuple[int, bytes]:
        headers = [
            ("Host", self.netloc),
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
        ]
        request = h11.Request(method="POST", target=self.target, headers=headers)
        conn.stream.send(
            conn.http.send(request) + conn.http.send(h11.Data(data=body)) + conn.http.send(h11.EndOfMessage())
        )
        status, answer = 0, bytearray()
        while True:
            event = conn.http.next_event()
            if event is h11.NEED_DATA:
                data = await conn.stream.recv()
                if not data and conn.http.their_state is h11.SEND_RESPONSE:
                    raise MeasurementFailure("eof_error")
                conn.http.receive_data(data)
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                answer += event.data
                if len(answer) > MAX_ANSWER_BYTES:
                    raise MeasurementFailure("http_body_too_large")
            elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                break
        if conn.http.our_state is h11.DONE and conn.http.their_state is h11.DONE:
            conn.http.start_next_cycle()
            self._idle.append(conn)
        else:
            conn.stream.close()
        return status, bytes(answer)

    async def aclose(self) -> None:
        while self._idle:
            self._idle.pop().stream.close()
