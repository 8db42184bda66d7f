"""DNS over UDP and TCP on asyncio, and the internet's authoritative ("real") resolver.

:func:`serve` runs any :data:`Handler` (query in, answer out, or None to stay silent) on one
address and port; :class:`Authority` is the handler that knows every site of the lab.
"""

from __future__ import annotations

import asyncio
import contextlib
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
TTL = 60


class Authority:
    """Answers A for every site, NODATA for other types, NXDOMAIN for anything else."""

    def __init__(self, records: dict[str, str]) -> None:
        self.records = {f"{host}.": ip for host, ip in records.items()}

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
        task = asyncio.ensure_future(self._answer(data, addr))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

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


async def serve(host: str, port: int, handler: Handler) -> list[object]:
    """Serve ``handler`` on UDP and TCP ``host:port``; return what keeps them alive."""
    loop = asyncio.get_running_loop()
    udp, _ = await loop.create_datagram_endpoint(lambda: _Udp(handler), local_addr=(host, port))
    tcp = await asyncio.start_server(lambda r, w: _tcp(handler, r, w), host, port, reuse_address=True)
    return [udp, tcp]
