"""A request's line and headers must arrive within :data:`HEADERS_TIMEOUT` (a 408, then the
connection is closed): uvicorn has no such limit, so a client that opened a connection and sent
nothing, or part of its headers (slowloris), held it, and a file descriptor, for ever. Its
keep-alive timeout covers only the wait between requests and stops at the next request's first
byte; the body has its own limit (``http.BODY_IDLE_TIMEOUT``). nginx's ``client_header_timeout``
is 60 s too.

uvicorn's httptools protocol with a deadline (:mod:`~reachwatch.collector.deadlines`): started
when the connection is made and when a request begins, stopped once its headers are complete or
the connection is lost. Without httptools (uvicorn's h11 protocol) there is no such limit.
"""

from __future__ import annotations

from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from reachwatch.collector.deadlines import Deadlines, for_loop

HEADERS_TIMEOUT = 60.0


class HeaderTimeoutProtocol(HttpToolsProtocol):
    _headers: Deadlines[HeaderTimeoutProtocol]

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._headers = for_loop(self.loop, "headers", HeaderTimeoutProtocol._headers_late)
        self._headers.start(self, HEADERS_TIMEOUT)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._headers.start(self, HEADERS_TIMEOUT)

    def on_headers_complete(self) -> None:
        self._headers.stop(self)
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._headers.stop(self)
        super().connection_lost(exc)

    def _headers_late(self) -> None:
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
