"""DNS over UDP and TCP on asyncio, and the internet's authoritative ("real") resolver.

:func:`serve` runs any :data:`Handler` (query in, answer out, or None to stay silent) on one
address and port; :class:`Authority` is the handler that knows every site of the lab.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import cast

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

Handler = Callable[[dns.message.Message], Awaitable[dns.message.Message | None]]
# Optional fast path on a handler: ``fast(wire, reply)`` takes a plain query without parsing it
# into a Message and answers through ``reply(bytes)`` (now or later); False leaves it to the handler.
Reply = Callable[[bytes], None]
TTL = 60
_PLAIN_LABEL = re.compile(rb"[A-Za-z0-9_-]{1,63}")


def plain_question(wire: bytes) -> tuple[str, int, int, int] | None:
    """(lower-case name with the final dot, qtype, qclass, end of the question) of a plain query.

    Plain: QUERY opcode, not a response, one question, no other records (no EDNS), labels of
    letters, digits, ``-`` and ``_`` only (so the name's text is what dnspython would print).
    Anything else is None, for the full parser.
    """
    if len(wire) < 17 or wire[2] & 0xF8 or wire[4:12] != b"\x00\x01\x00\x00\x00\x00\x00\x00":
        return None
    labels: list[str] = []
    pos = 12
    while True:
        if pos >= len(wire):
            return None
        size = wire[pos]
        if size == 0:
            break
        label = wire[pos + 1 : pos + 1 + size]
        if size > 63 or not _PLAIN_LABEL.fullmatch(label):
            return None
        labels.append(label.decode("ascii").lower())
        pos += 1 + size
    end = pos + 5
    if not labels or end != len(wire):
        return None
    qtype, qclass = struct.unpack_from("!HH", wire, pos + 1)
    return ".".join(labels) + ".", qtype, qclass, end


def plain_reply(query: bytes, end: int, rcode: int, *, aa: bool, answer: bytes = b"") -> bytes:
    """The reply to a plain query: its id and question, QR and RA set, RD copied, one answer at most."""
    flags = 0x8000 | (0x0400 if aa else 0) | ((query[2] & 0x01) << 8) | 0x0080 | rcode
    header = query[:2] + struct.pack("!HHHHH", flags, 1, 1 if answer else 0, 0, 0)
    return header + query[12:end] + answer


def a_record(ip: str, ttl: int = TTL) -> bytes:
    """An IN A answer whose owner is the question's name (compression pointer to offset 12)."""
    return (
        b"\xc0\x0c" + struct.pack("!HHIH", dns.rdatatype.A, dns.rdataclass.IN, ttl, 4) + socket.inet_aton(ip)
    )


class Authority:
    """Answers A for every site, NODATA for other types, NXDOMAIN for anything else."""

    def __init__(self, records: dict[str, str]) -> None:
        self.records = {f"{host}.": ip for host, ip in records.items()}

    def fast(self, wire: bytes, reply: Reply) -> bool:
        """The same answers as __call__, built from the wire for plain IN queries."""
        question = plain_question(wire)
        if question is None or question[2] != dns.rdataclass.IN:
            return False
        name, qtype, _, end = question
        ip = self.records.get(name)
        if ip is None:
            reply(plain_reply(wire, end, dns.rcode.NXDOMAIN, aa=True))
        else:
            reply(
                plain_reply(wire, end, dns.rcode.NOERROR, aa=True, answer=a_record(ip) if qtype == 1 else b"")
            )
        return True

    async def __call__(self, query: dns.message.Message) -> dns.message.Message:
        reply = dns.message.make_response(query)
        reply.flags |= dns.flags.AA | dns.flags.RA
        if not query.question:
            reply.set_rcode(dns.rcode.FORMERR)
            return reply
        question = query.question[0]
        ip = self.records.get(question.name.to_text().lower())
        if ip is None:
            reply.set_rcode(dns.rcode.NXDOMAIN)
        elif question.rdtype == dns.rdatatype.A:
            reply.answer.append(
                dns.rrset.from_text(question.name, TTL, dns.rdataclass.IN, dns.rdatatype.A, ip)
            )
        return reply


def parse(wire: bytes) -> dns.message.Message | None:
    try:
        return dns.message.from_wire(wire)
    except dns.exception.DNSException:
        return None


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.transport: asyncio.DatagramTransport | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # uvloop's is not a subclass

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        fast = getattr(self.handler, "fast", None)
        if fast is not None and fast(data, lambda wire: self._send(wire, addr)):
            return
        task = asyncio.ensure_future(self._answer(data, addr))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _send(self, wire: bytes, addr: tuple[str, int]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(wire, addr)

    async def _answer(self, data: bytes, addr: tuple[str, int]) -> None:
        query = parse(data)
        reply = await self.handler(query) if query is not None else None
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply.to_wire(max_size=65535 if len(data) > 512 else 512), addr)


async def _tcp(handler: Handler, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError, OSError, TimeoutError):
        while True:
            (length,) = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), 30))
            query = parse(await reader.readexactly(length))
            reply = await handler(query) if query is not None else None
            if reply is None:
                continue
            wire = reply.to_wire()
            writer.write(struct.pack("!H", len(wire)) + wire)
            await writer.drain()
    writer.close()


#: The receive buffer of the lab's DNS sockets. At the kernel's default (~200 KB, a few hundred
#: queries) a burst of lookups from a 2,000-site run on several ISPs overflowed the real
#: resolver's socket while its process was busy serving pages: queries were dropped, the
#: censoring resolvers answered SERVFAIL, and a clean ISP got "dns" verdicts. A lab server must
#: queue such a burst, not lose it.
RECEIVE_BUFFER = 16 * 1024 * 1024
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)  # Linux's; Python's socket module lacks it


def udp_socket(local: tuple[str, int] | None = None, remote: tuple[str, int] | None = None) -> socket.socket:
    """A UDP socket with a receive buffer of RECEIVE_BUFFER, bound and/or connected."""
    family = socket.AF_INET6 if ":" in (local or remote or ("",))[0] else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:  # past net.core.rmem_max needs CAP_NET_ADMIN, which the lab has (it runs as root)
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    if local is not None:
        sock.bind(local)
    if remote is not None:
        sock.connect(remote)
    sock.setblocking(False)
    return sock


async def serve(host: str, port: int, handler: Handler) -> list[object]:
    """Serve ``handler`` on UDP and TCP ``host:port``; return what keeps them alive."""
    loop = asyncio.get_running_loop()
    udp, _ = await loop.create_datagram_endpoint(lambda: _Udp(handler), sock=udp_socket(local=(host, port)))
    tcp = await asyncio.start_server(lambda r, w: _tcp(handler, r, w), host, port, reuse_address=True)
    return [udp, tcp]
