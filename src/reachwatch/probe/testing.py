"""Test helpers (like trio.testing): a throwaway CA, an HTTP(S) server and a DNS server on loopback.

Each server runs its own event loop in a thread, so async tests and CLI subprocess tests can use
it alike. Everything binds to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
import threading
import urllib.parse
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import dns.message
import dns.rrset

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class CertFiles:
    cert: Path
    key: Path


class ThrowawayCA:
    """A CA that issues leaf certificates; ``ca_file`` is what --ca-file takes."""

    def __init__(self, directory: Path, name: str = "reachwatch test CA") -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.dir = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, _sha256())
        )
        self.ca_file = directory / f"{name.replace(' ', '-')}.pem"
        self.ca_file.write_bytes(_pem(self.cert))

    def issue(self, names: list[str], *, expired: bool = False, label: str = "leaf") -> CertFiles:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        start, end = (now - dt.timedelta(days=10), now - dt.timedelta(days=5)) if expired else (
            now - dt.timedelta(days=1), now + dt.timedelta(days=10))  # fmt: skip
        sans: list[x509.GeneralName] = []
        for name in names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                sans.append(x509.DNSName(name))
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .sign(self.key, _sha256())
        )
        files = CertFiles(self.dir / f"{label}.crt", self.dir / f"{label}.key")
        files.cert.write_bytes(_pem(cert) + _pem(self.cert))
        files.key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return files


def _sha256() -> Any:
    from cryptography.hazmat.primitives import hashes

    return hashes.SHA256()


def _pem(cert: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(cert.public_bytes(serialization.Encoding.PEM))


def server_context(files: CertFiles) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(files.cert, files.key)
    return ctx


class LoopThread:
    """An event loop in a daemon thread; ``call`` runs a coroutine there and waits for it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro: Awaitable[Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)  # type: ignore[arg-type]

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


PAGE = b"<html><head><title>Test page</title></head><body>hello from the test server</body></html>"


async def _until_eof(reader: asyncio.StreamReader) -> None:
    """Read and ignore everything until the client goes away: a server that never answers."""
    while await reader.read(65536):
        pass


async def standard_routes(path: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """/ok, /redirect, /loop/N (endless redirects), /to/LOCATION (a redirect to the percent-decoded
    LOCATION, as given), /endless, /short (cut body), /hang, /close."""
    if path.startswith("/hang"):
        await _until_eof(reader)
    elif path.startswith("/close"):
        writer.transport.abort()
    elif path.startswith("/short"):  # headers, part of the promised body, then the end
        _head(writer, "200 OK", [("Content-Type", "text/plain"), ("Content-Length", "1000")])
        writer.write(b"only ten b")
        await writer.drain()
        writer.transport.abort()
    elif path.startswith("/loop/"):
        n = int(path.rsplit("/", 1)[1] or 0)
        _head(writer, "302 Found", [("Location", f"/loop/{n + 1}"), ("Content-Length", "0")])
    elif path.startswith("/to/"):
        location = urllib.parse.unquote(path.removeprefix("/to/"))
        _head(writer, "302 Found", [("Location", location), ("Content-Length", "0")])
    elif path.startswith("/redirect"):
        _head(writer, "301 Moved", [("Location", "/ok"), ("Content-Length", "0")])
    elif path.startswith("/endless"):
        _head(writer, "200 OK", [("Content-Type", "application/octet-stream")])
        chunk = b"x" * 65536
        while not writer.is_closing():
            writer.write(chunk)
            await writer.drain()
    else:
        _head(writer, "200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(PAGE)))])
        writer.write(PAGE)
    await writer.drain()


def _head(writer: asyncio.StreamWriter, status: str, headers: list[tuple[str, str]]) -> None:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers), "", ""]
    writer.write("\r\n".join(lines).encode())


class HttpServer:
    """HTTP/1.1 (HTTPS with ``context``) on 127.0.0.1; ``silent`` accepts and never reads or answers."""

    def __init__(
        self, loop: LoopThread, context: ssl.SSLContext | None = None, *, silent: bool = False
    ) -> None:
        self.loop = loop
        self.context = context
        self.silent = silent
        self.server: asyncio.Server = loop.call(
            asyncio.start_server(
                self._serve, LOOPBACK, 0, ssl=context, ssl_handshake_timeout=5 if context else None
            )
        )
        self.port: int = self.server.sockets[0].getsockname()[1]
        scheme = "https" if context else "http"
        self.base = f"{scheme}://{LOOPBACK}:{self.port}"
        self.named = f"{scheme}://localhost:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if self.silent:
                await _until_eof(reader)
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1].decode()
                await standard_routes(path, reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ssl.SSLError):
            pass
        finally:
            writer.transport.abort()

    def close(self) -> None:
        """Close on the server's own loop: asyncio.Server is not thread-safe (closing it from the
        test's thread raced with its loop and failed now and then)."""

        async def _close() -> None:
            self.server.close()

        self.loop.call(_close())


class DnsServer(asyncio.DatagramProtocol):
    """Answers A for any name with ``address`` (AAAA: no answer), misbehaving as told.

    ``mode``: "normal"; "garbage" (garbage bytes, a reply with a wrong id, then the answer);
    "inject" (an answer with ``injected`` first, then the real one); "lossy" (the first copy of
    each query is lost, as a busy forwarder drops it; copies sent again are answered); "silent"
    (answers nothing, counts what it gets).
    """

    def __init__(self, loop: LoopThread, *, mode: str = "normal", address: str = LOOPBACK,
                 injected: str = "127.0.0.2") -> None:  # fmt: skip
        self.mode, self.address, self.injected = mode, address, injected
        self._loop = loop
        self.transport: asyncio.DatagramTransport | None = None
        self.received: dict[int, int] = {}  # query id -> copies received
        loop.call(self._start(loop))
        assert self.transport is not None
        self.port: int = self.transport.get_extra_info("sockname")[1]
        self.resolver = f"{LOOPBACK}:{self.port}"

    async def _start(self, loop: LoopThread) -> None:
        await loop.loop.create_datagram_endpoint(lambda: self, local_addr=(LOOPBACK, 0))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def _answer(self, query: dns.message.Message, address: str) -> bytes:
        reply = dns.message.make_response(query)
        question = query.question[0]
        if question.rdtype == 1:
            reply.answer.append(dns.rrset.from_text(question.name, 60, "IN", "A", address))
        return reply.to_wire()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        assert self.transport is not None
        query = dns.message.from_wire(data)
        self.received[query.id] = self.received.get(query.id, 0) + 1
        if self.mode == "silent" or (self.mode == "lossy" and self.received[query.id] == 1):
            return
        if self.mode == "garbage":
            self.transport.sendto(b"\x00garbage, not DNS", addr)
            wrong = dns.message.from_wire(self._answer(query, self.address))
            wrong.id = (query.id + 1) % 65536
            self.transport.sendto(wrong.to_wire(), addr)
            self.transport.sendto(self._answer(query, self.address)[:20], addr)  # truncated
        if self.mode == "inject":
            self.transport.sendto(self._answer(query, self.injected), addr)
        self.transport.sendto(self._answer(query, self.address), addr)

    def close(self) -> None:
        transport = self.transport
        if transport is not None:  # on its own loop, like HttpServer.close
            self._loop.loop.call_soon_threadsafe(transport.close)
