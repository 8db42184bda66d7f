"""A request's line and headers must arrive within :data:`HEADERS_TIMEOUT` (a 408, then the
connection is closed): uvicorn has no such limit, so a client that opened a connection and sent
nothing, or part of its headers (slowloris), held it, and a file descriptor, for ever. Its
keep-alive timeout covers only the wait between requests and stops at the next request's first
byte; the body has its own limit (``http.BODY_IDLE_TIMEOUT``). nginx's ``client_header_timeout``
is 60 s too.

uvicorn's httptools protocol with a timer: started when the connection is made and when a
request begins, stopped once its headers are complete or the connection is lost. Without httptools
(uvicorn's h11 protocol) there is no such limit.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEADERS_TIMEOUT = 60.0


class HeaderTimeoutProtocol(HttpToolsProtocol):
    _headers_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._start_headers_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._start_headers_timer()

    def on_headers_complete(self) -> None:
        self._stop_headers_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_headers_timer()
        super().connection_lost(exc)

    def _start_headers_timer(self) -> None:
        self._stop_headers_timer()
        self._headers_timer = asyncio.get_running_loop().call_later(HEADERS_TIMEOUT, self._headers_late)

    def _stop_headers_timer(self) -> None:
        if self._headers_timer is not None:
            self._headers_timer.cancel()
            self._headers_timer = None

    def _headers_late(self) -> None:
        self._headers_timer = None
        if self.transport.is_closing():
            return
        body = orjson.dumps(
            {"error": f"the request's headers did not arrive within {HEADERS_TIMEOUT:g} s: send them whole"}
        )
        self.transport.write(
            b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        self.transport.close()
