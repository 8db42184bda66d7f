"""Just enough HTTP/1.1 for the lab's servers: read a request head, write a response."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

MAX_HEAD = 16384


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    version: str
    headers: dict[str, str]  # lower-case names
    raw: bytes  # the head exactly as received, for relaying

    @property
    def host(self) -> str:
        """The Host header without port, lower case."""
        host = self.headers.get("host", "").strip().lower()
        return host.rsplit(":", 1)[0] if not host.endswith("]") else host

    @property
    def keep_alive(self) -> bool:
        conn = self.headers.get("connection", "").lower()
        return "close" not in conn if self.version == "HTTP/1.1" else "keep-alive" in conn


async def read_request(
    reader: asyncio.StreamReader, timeout: float = 30.0, *, body: bool = True
) -> Request | None:
    """The next request head (its body read and dropped if ``body``), or None at EOF, timeout or junk."""
    try:
        async with asyncio.timeout(timeout):  # not wait_for: no task per request
            head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    if length and body:  # bodies are read and ignored
        try:
            await reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
    return Request(parts[0], parts[1], parts[2], headers, head)


def response(
    status: int, body: bytes, *, headers: dict[str, str] | None = None, keep_alive: bool = False
) -> bytes:
    reasons = {200: "OK", 301: "Moved Permanently", 404: "Not Found", 503: "Service Unavailable"}
    all_headers = {
        "Server": "reachwatch-lab",
        "Content-Type": "text/html; charset=utf-8",
        "Content-Length": str(len(body)),
        "Connection": "keep-alive" if keep_alive else "close",
        **(headers or {}),
    }
    head = f"HTTP/1.1 {status} {reasons.get(status, 'Status')}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in all_headers.items()) + "\r\n"
    return head.encode("latin-1") + body


def blockpage_response(body: bytes) -> bytes:
    """A censor's blockpage as middleboxes send it: no length, the end is the connection's close.

    It shares no uncommon header with the origin's answers (which carry Content-Length and
    Connection), so OONI's header comparison can tell the two apart, as it can in the field.
    """
    head = "HTTP/1.1 200 OK\r\nServer: censor-proxy\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    return head.encode("latin-1") + body


async def close(writer: asyncio.StreamWriter) -> None:
    try:
        writer.close()
        await writer.wait_closed()
    except (ConnectionError, OSError, TimeoutError):
        pass
