"""The I/O boundary: a TCP stream and a TLS stream over it, both counting bytes received.

A small asyncio Protocol instead of asyncio streams: no per-connection thread, flow control,
and a byte counter that sees every byte the network delivered (TLS records included), which
is what ``x_bytes_received`` reports.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Protocol, cast

_HIGH_WATER = 256 * 1024


class ByteStream(Protocol):
    """What the HTTP layer needs: read some bytes (b"" at EOF), write, close."""

    async def recv(self) -> bytes: ...
    def send(self, data: bytes) -> None: ...
    def close(self) -> None: ...


class TcpStream(asyncio.Protocol):
    """A connected TCP socket seen as recv()/send(); ``bytes_received`` counts everything read."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.bytes_received = 0
        self._buffer = bytearray()
        self._eof = False
        self._exc: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False

    # asyncio.Protocol callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.bytes_received += len(data)
        self._buffer += data
        if len(self._buffer) > _HIGH_WATER and self.transport is not None:
            self.transport.pause_reading()
            self._paused = True
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        if exc is not None:
            self._exc = exc
        self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # the stream interface
    async def recv(self) -> bytes:
        while not self._buffer:
            if self._exc is not None:
                raise self._exc
            if self._eof:
                return b""
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        data = bytes(self._buffer)
        self._buffer.clear()
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return data

    def send(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            if self._exc is not None:
                raise self._exc
            raise BrokenPipeError("the connection is closed")
        self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()


async def open_tcp(ip: str, port: int) -> TcpStream:
    """Connect to ip:port (no DNS; the caller resolved). Raises OSError subclasses."""
    loop = asyncio.get_running_loop()
    _, stream = await loop.create_connection(TcpStream, host=ip, port=port)
    return stream


class TlsStream:
    """TLS over a TcpStream with ssl.MemoryBIO: the handshake is a step we time and count."""

    def __init__(self, raw: TcpStream, context: ssl.SSLContext, server_name: str | None) -> None:
        self.raw = raw
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self.sslobj = context.wrap_bio(self._in, self._out, server_hostname=server_name)

    def _flush(self) -> None:
        data = self._out.read()
        if data:
            self.raw.send(data)

    async def _feed(self) -> None:
        data = await self.raw.recv()
        if data:
            self._in.write(data)
        else:
            self._in.write_eof()

    # No await inside an except block: a compiled (mypyc) coroutine cancelled while suspended
    # there leaks the handled exception into its caller's sys.exc_info(), and it resurfaces later.
    async def handshake(self) -> None:
        while True:
            try:
                self.sslobj.do_handshake()
            except ssl.SSLWantReadError:
                pass
            else:
                self._flush()
                return
            self._flush()
            await self._feed()

    async def recv(self) -> bytes:
        while True:
            try:
                return self.sslobj.read(65536)
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLZeroReturnError:
                return b""
            self._flush()
            await self._feed()

    def send(self, data: bytes) -> None:
        self.sslobj.write(data)
        self._flush()

    def close(self) -> None:
        self.raw.close()

    def peer_chain_der(self) -> list[bytes]:
        """The certificates the server sent, leaf first, even when verification failed."""
        inner = getattr(self.sslobj, "_sslobj", None)
        getter = getattr(self.sslobj, "get_unverified_chain", None) or getattr(
            inner, "get_unverified_chain", None
        )
        if getter is not None:
            try:
                chain = getter() or []
                return [_der(cert) for cert in chain]
            except (ssl.SSLError, ValueError, AttributeError):
                pass
        try:
            leaf = self.sslobj.getpeercert(binary_form=True)
        except (ssl.SSLError, ValueError):
            return []
        return [leaf] if leaf else []


def _der(cert: object) -> bytes:
    if isinstance(cert, bytes):
        return cert
    public_bytes = cert.public_bytes  # type: ignore[attr-defined]
    return bytes(public_bytes(ssl._ssl.ENCODING_DER))  # type: ignore[attr-defined]
