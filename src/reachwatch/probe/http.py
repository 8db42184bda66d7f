"""Step: one HTTP/1.1 GET with h11 over a connected stream, observed as a ``requests`` entry.

The timeout bounds the whole request, body included; the body snapshot stops at the limit.
A failure after the response headers arrived keeps the status, the headers and the partial body.
"""

from __future__ import annotations

import asyncio
import base64
import codecs
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import h11

from reachwatch.failures import MeasurementFailure, classify
from reachwatch.probe.stream import ByteStream, TcpStream
from reachwatch.probe.trace import Trace, depth_tags
from reachwatch.urls import ascii_host

# What OONI's probe sends (a current desktop Chrome), so servers answer as they would a browser.
USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
# RFC 3986 reserved and unreserved characters, plus '%': left as they are in a request target
_TARGET_SAFE = "/?#[]@!$&'()*+,;=:-._~%"
BROWSER_HEADERS: dict[str, str] = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-US;q=0.8,en;q=0.5",
    "User-Agent": USER_AGENT,
}


@dataclass(slots=True)
class HttpResult:
    """What the hop logic needs beyond the observation: status, Location, the raw body."""

    entry: dict[str, Any]
    status: int | None = None
    location: str | None = None
    body: bytes = b""
    truncated: bool = False
    headers: list[tuple[str, str]] = field(default_factory=list)
    failure: str | None = None


def request_headers(url: str) -> list[tuple[str, str]]:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    if not host.isascii():  # an IDN: the Host header carries its IDNA form, as a browser sends it
        name = ascii_host(parts.hostname or "")
        host = name if parts.port is None else f"{name}:{parts.port}"
    return [("Host", host), *BROWSER_HEADERS.items()]


def request_target(url: str) -> str:
    """Path and query as sent: characters not allowed on the request line (spaces, non-ASCII)
    are percent-encoded, as a browser does; what is already encoded is kept."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return quote(target, safe=_TARGET_SAFE)


async def get(
    stream: ByteStream,
    raw: TcpStream,
    url: str,
    *,
    timeout: float,
    body_limit: int,
    trace: Trace,
    depth: int,
    tid: int | None = None,
) -> HttpResult:
    """GET ``url`` over ``stream``; ``raw`` is the TCP stream under it (for the byte count).

    ``tid``: the connection's transaction id, shared with its TCP connect and TLS handshake.
    """
    tid = trace.next_id() if tid is None else tid
    t0 = trace.now()
    before = raw.bytes_received
    headers = request_headers(url)
    target = request_target(url)
    result = HttpResult(entry={})
    body = bytearray()
    try:
        async with asyncio.timeout(timeout):
            await _exchange(stream, target, headers, result, body, body_limit)
    except Exception as exc:
        result.failure = classify(exc)
    finally:
        stream.close()
    result.body = bytes(body)
    result.entry = {
        "request": {
            "method": "GET",
            "url": url,
            "headers": dict(headers),
            "headers_list": [list(h) for h in headers],
            "body": "",
            "tor": {"is_tor": False},
            "x_transport": "tcp",
        },
        "response": {
            "code": result.status or 0,
            "headers": dict(result.headers),
            "headers_list": [list(h) for h in result.headers],
            "body": body_value(result.body, result.truncated) if result.status is not None else None,
            "body_is_truncated": result.truncated,
        },
        "failure": result.failure,
        "t0": t0,
        "t": trace.now(),
        "tags": depth_tags(depth),
        "transaction_id": tid,
        "x_bytes_received": raw.bytes_received - before,
    }
    return result


async def _exchange(
    stream: ByteStream,
    target: str,
    headers: list[tuple[str, str]],
    result: HttpResult,
    body: bytearray,
    body_limit: int,
) -> None:
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=64 * 1024)
    request = h11.Request(method="GET", target=target, headers=headers)
    stream.send(conn.send(request) + conn.send(h11.EndOfMessage()))
    eof = False
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError:
            if eof:  # the peer closed in the middle of the response
                raise MeasurementFailure("eof_error") from None
            raise
        if event is h11.NEED_DATA:
            data = await stream.recv()
            eof = not data
            if eof and result.status is None:
                raise MeasurementFailure("eof_error")
            conn.receive_data(data)
            continue
        if isinstance(event, h11.InformationalResponse):
            continue
        if isinstance(event, h11.Response):
            result.status = event.status_code
            result.headers = [
                (k.decode("latin-1"), v.decode("latin-1")) for k, v in event.headers.raw_items()
            ]
            for name, value in result.headers:
                if name.lower() == "location":
                    result.location = value
        elif isinstance(event, h11.Data):
            room = body_limit - len(body)
            body += event.data[:room]
            if len(event.data) >= room:
                result.truncated = True
                return
        elif isinstance(event, h11.EndOfMessage):
            return
        elif isinstance(event, h11.ConnectionClosed):
            if result.status is None:
                raise MeasurementFailure("eof_error")
            return


def body_value(body: bytes, truncated: bool) -> str | dict[str, str]:
    """UTF-8 text as a string (a character cut by truncation is dropped), else base64."""
    try:
        return codecs.getincrementaldecoder("utf-8")().decode(body, final=not truncated)
    except UnicodeDecodeError:
        return {"format": "base64", "data": base64.b64encode(body).decode()}
