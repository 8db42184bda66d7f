"""The censoring resolver in the router: one per ISP, applying that ISP's DNS rules.

The router DNATs the ISP's port-53 traffic for the real resolver here, so answers still seem to
come from the real resolver. Rules (by exact name): ``answer`` an address, ``nxdomain``, or
``drop`` (never answer). Everything else is forwarded to the real resolver.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any, cast

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from reachwatch.lab.servers.dns import TTL, Reply, plain_question, udp_socket

FORWARD_TIMEOUT = 3.0


def _answer(reply: dns.message.Message, rule: dict[str, str]) -> dns.message.Message | None:
    question = reply.question[0]
    if question.rdtype == dns.rdatatype.A:
        rrset = dns.rrset.from_text(question.name, TTL, dns.rdataclass.IN, dns.rdatatype.A, rule["addr"])
        reply.answer.append(rrset)
    return reply


def _nxdomain(reply: dns.message.Message, rule: dict[str, str]) -> dns.message.Message | None:
    reply.set_rcode(dns.rcode.NXDOMAIN)
    return reply


def _drop(reply: dns.message.Message, rule: dict[str, str]) -> dns.message.Message | None:
    return None


ACTIONS: dict[str, Callable[[dns.message.Message, dict[str, str]], dns.message.Message | None]] = {
    "answer": _answer,
    "nxdomain": _nxdomain,
    "drop": _drop,
}


class Forwarder(asyncio.DatagramProtocol):
    """Relays plain queries to the upstream resolver as they are, over one socket.

    Each relayed query gets a query id unused among those in flight; the upstream's reply goes
    back to the client byte for byte with the client's id, so it still seems to come from the
    real resolver. No reply within FORWARD_TIMEOUT: SERVFAIL, as the full path answers.
    """

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: dict[int, tuple[bytes, Reply, asyncio.TimerHandle]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def relay(self, wire: bytes, reply: Reply) -> bool:
        if self.transport is None or len(self.pending) >= 60000:
            return False
        qid = random.getrandbits(16)
        while qid in self.pending:
            qid = random.getrandbits(16)
        timer = asyncio.get_running_loop().call_later(FORWARD_TIMEOUT, self._expire, qid)
        self.pending[qid] = (wire, reply, timer)
        self.transport.sendto(qid.to_bytes(2, "big") + wire[2:])
        return True

    def datagram_received(self, data: bytes, addr: Any) -> None:
        entry = self.pending.pop(int.from_bytes(data[:2], "big"), None) if len(data) >= 12 else None
        if entry is not None:
            wire, reply, timer = entry
            timer.cancel()
            reply(wire[:2] + data[2:])

    def _expire(self, qid: int) -> None:
        wire, reply, _ = self.pending.pop(qid)
        try:
            servfail = dns.message.make_response(dns.message.from_wire(wire))
        except dns.exception.DNSException:
            return
        servfail.set_rcode(dns.rcode.SERVFAIL)
        reply(servfail.to_wire())


class CensoringResolver:
    def __init__(self, rules: dict[str, dict[str, str]], upstream: str) -> None:
        self.rules = {f"{host}.": rule for host, rule in rules.items()}
        self.upstream = upstream
        self.forwarder: Forwarder | None = None

    async def start(self) -> None:
        """Open the upstream socket of the fast path (plain queries without a rule)."""
        _, self.forwarder = await asyncio.get_running_loop().create_datagram_endpoint(
            Forwarder, sock=udp_socket(remote=(self.upstream, 53))
        )

    def fast(self, wire: bytes, reply: Reply) -> bool:
        """Relay a plain query no rule applies to; anything else goes to __call__."""
        question = plain_question(wire)
        if question is None or self.forwarder is None or question[0] in self.rules:
            return False
        return self.forwarder.relay(wire, reply)

    async def __call__(self, query: dns.message.Message) -> dns.message.Message | None:
        rule = self.rules.get(query.question[0].name.to_text().lower()) if query.question else None
        if rule is None:
            return await self._forward(query)
        reply = dns.message.make_response(query)
        reply.flags |= dns.flags.RA
        return ACTIONS[rule["action"]](reply, rule)

    async def _forward(self, query: dns.message.Message) -> dns.message.Message | None:
        try:
            return await dns.asyncquery.udp(query, self.upstream, timeout=FORWARD_TIMEOUT)
        except (dns.exception.DNSException, OSError):
            reply = dns.message.make_response(query)
            reply.set_rcode(dns.rcode.SERVFAIL)
            return reply
