"""A request's line and headers must arrive within :data:`HEADERS_TIMEOUT` (a 408, then the
connection is closed), and take at most :data:`MAX_HEADER_BYTES` (a 431): uvicorn has neither
limit, so a client that opened a connection and sent nothing, or part of its headers
(slowloris), held it, and a file descriptor, for ever. Its
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
#: The most a request's line and headers may take: httptools keeps whatever comes until they end,
#: so a 128 MB header was read (29 s, the loop stalled ~10 s, 400 MB) and answered 200 (an outside
#: check, session 15). nginx's default buffers hold 4 x 8 KB; 64 KiB is far past any probe's.
MAX_HEADER_BYTES = 64 << 10
#: After a 431, what the client still sends is read and dropped, this much and this long at most
DRAIN_BYTES = 4 << 20
DRAIN_SECONDS = 5.0


class HeaderTimeoutProtocol(HttpToolsProtocol):
    _headers: Deadlines[HeaderTimeoutProtocol]
    #: bytes received since the request began, while its headers are not complete (-1: they are)
    _header_bytes = 0
    #: bytes dropped since a 431 (-1: none was given)
    _draining = -1

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._headers = for_loop(self.loop, "headers", HeaderTimeoutProtocol._headers_late)
        self._headers.start(self, HEADERS_TIMEOUT)
        self._header_bytes = 0

    def data_received(self, data: bytes) -> None:
        if self._draining >= 0:  # refused: what still comes is dropped, up to a bound
            self._draining += len(data)
            if self._draining > DRAIN_BYTES:
                self.transport.close()
            return
        if self._header_bytes >= 0:
            self._header_bytes += len(data)
        super().data_received(data)  # may begin a request (0) or complete its headers (-1)
        if self._header_bytes > MAX_HEADER_BYTES and not self.transport.is_closing():
            self._headers.stop(self)
            self._refuse(
                b"431 Request Header Fields Too Large",
                f"the request's line and headers are longer than {MAX_HEADER_BYTES} bytes: send shorter ones",
            )
            # closed with bytes unread, the kernel would reset the connection, and a client still
            # sending would see that instead of the 431: the answer ends the sending side, and
            # what still comes is read and dropped (DRAIN_BYTES, DRAIN_SECONDS at most)
            if self.transport.can_write_eof():
                self.transport.write_eof()
                self._draining = 0
                self.loop.call_later(DRAIN_SECONDS, self.transport.close)
            else:
                self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._headers.start(self, HEADERS_TIMEOUT)
        self._header_bytes = 0

    def on_headers_complete(self) -> None:
        self._headers.stop(self)
        self._header_bytes = -1
        super().on_headers_complete()

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        self._running = cycle
        super()._start_asgi_task(cycle, app)

    def connection_lost(self, exc: Exception | None) -> None:
        self._headers.stop(self)
        # uvicorn tells only the newest request parsed that its client is gone: one running ahead
        # of it in a pipeline then wrote its answer to the closed transport, which uvloop raises on
        # (RuntimeError "the handler is closed"), logged as an internal error and as an answer
        # never completed (an outside check, session 16: pipelined GETs from clients that left)
        running: Any = getattr(self, "_running", None)
        if running is not None and not running.response_complete:
            running.disconnected = True
            running.message_event.set()
        super().connection_lost(exc)

    def _headers_late(self) -> None:
        if self.transport.is_closing():
            return
        self._refuse(
            b"408 Request Timeout",
            f"the request's headers did not arrive within {HEADERS_TIMEOUT:g} s: send them whole",
        )
        self.transport.close()

    def _refuse(self, status: bytes, error: str) -> None:
        """Answer ``status`` with ``error`` (the request never began); the caller closes."""
        body = orjson.dumps({"error": error})
        self.transport.write(
            b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\nconnection: close\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
