"""Step: A and AAAA queries over UDP to one resolver, keeping every reply that arrives.

The first valid reply to each query goes to ``queries``; anything else that arrives while the
measurement runs (an injected answer and the real one, garbage, replies with a wrong id) is kept
for ``x_dns_duplicate_responses``. Garbage never ends the wait for a valid reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import struct
from typing import Any, cast

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from reachwatch.failures import MeasurementFailure, classify
from reachwatch.probe.dns import address_answer, query_entry
from reachwatch.probe.dnsreply import plain_reply
from reachwatch.probe.tcp import endpoint
from reachwatch.probe.trace import Trace

QUERY_TYPES = ("A", "AAAA")
#: A query with no valid reply yet is sent again this long after the first copy (seconds), as stub
#: resolvers do (and as the probe asks of the system's, dns.retry_lost_queries): a datagram lost
#: on the way (a home router's forwarder drops queries past its limit, 150 at once for dnsmasq)
#: must not read as DNS blocking. A censor that drops the query drops its copies too; every reply
#: to any copy is kept, as for the first. The lookup's own timeout ends the copies.
RESEND_EVERY = 1.0
RESENDS = 3
_RCODE_FAILURES: dict[int, str] = {
    dns.rcode.NXDOMAIN: "dns_nxdomain_error",
    dns.rcode.REFUSED: "dns_refused_error",
}


class UdpLookup(asyncio.DatagramProtocol):
    """One socket, one query per type; collects replies until close()."""

    def __init__(self, hostname: str, resolver: tuple[str, int], trace: Trace, depth: int) -> None:
        self.hostname = hostname
        self.resolver_address = endpoint(*resolver)
        self.trace = trace
        self.depth = depth
        self.queries: dict[int, tuple[str, int, int, float]] = {}  # id -> (type, rdtype, tid, t0)
        self.qname: dns.name.Name | None = None
        self.question = b""  # the name in wire form, lower case
        self.first: dict[str, dict[str, Any]] = {}
        self.first_bad: dict[str, dict[str, Any]] = {}
        self.extra: list[dict[str, Any]] = []
        self.answered = asyncio.get_running_loop().create_future()
        self.transport: asyncio.DatagramTransport | None = None
        self.wires: dict[int, bytes] = {}  # id -> the query as sent
        self.resend: asyncio.TimerHandle | None = None  # one timer, re-armed while unanswered
        self.resent = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.qname = dns.name.from_text(self.hostname)
        question = self.qname.to_wire() or b""  # uncompressed, so never None
        self.question = question.lower()
        for qtype in QUERY_TYPES:
            rdtype = dns.rdatatype.from_text(qtype)
            qid = secrets.randbits(16)
            while qid in self.queries:
                qid = secrets.randbits(16)
            self.queries[qid] = (qtype, rdtype, self.trace.next_id(), self.trace.now())
            self.wires[qid] = query_wire(qid, question, rdtype)
            self.transport.sendto(self.wires[qid])
        self.resend = asyncio.get_running_loop().call_later(RESEND_EVERY, self._resend)

    def _resend(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        unanswered = [qid for qid, (qtype, *_) in self.queries.items() if qtype not in self.first]
        for qid in unanswered:
            self.transport.sendto(self.wires[qid])
        self.resent += 1
        if unanswered and self.resent < RESENDS:
            self.resend = asyncio.get_running_loop().call_later(RESEND_EVERY, self._resend)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        qid = int.from_bytes(data[:2], "big") if len(data) >= 2 else -1
        known = self.queries.get(qid)
        if known is None:
            self._record(self._guess_type(data), None, "dns_reply_with_wrong_query_id", [], valid=False)
            return
        qtype, rdtype, _tid, _t0 = known
        assert self.qname is not None  # set when the queries were sent
        failure, answers, valid = read_reply(data, qid, self.qname, self.question, rdtype)
        self._record(qtype, qid, failure, answers, valid=valid)

    def error_received(self, exc: Exception) -> None:
        for qtype, _rdtype, _tid, _t0 in self.queries.values():
            if qtype not in self.first:
                self._record(qtype, None, classify(exc), [], valid=True)

    def _guess_type(self, data: bytes) -> str:
        with contextlib.suppress(Exception):
            msg = dns.message.from_wire(data, question_only=True)
            if msg.question:
                return dns.rdatatype.to_text(msg.question[0].rdtype)
        return "ANY"

    def _record(
        self,
        qtype: str,
        qid: int | None,
        failure: str | None,
        answers: list[dict[str, Any]],
        *,
        valid: bool,
    ) -> None:
        match = self.queries.get(qid) if qid is not None else None
        if match is None and valid:  # a socket error: charge it to the first unanswered query
            match = next((m for m in self.queries.values() if m[0] == qtype), None)
        tid, t0 = (match[2], match[3]) if match else (self.trace.next_id(), self.trace.now())
        entry = query_entry(
            self.hostname, qtype, "udp", self.resolver_address, failure=failure, answers=answers,
            t0=t0, t=self.trace.now(), depth=self.depth, tid=tid,
        )  # fmt: skip
        if valid and qtype not in self.first:
            self.first[qtype] = entry
            if len(self.first) == len(QUERY_TYPES) and not self.answered.done():
                self.answered.set_result(None)
        else:
            self.extra.append(entry)
            if not valid and match is not None and qtype not in self.first_bad:
                self.first_bad[qtype] = entry

    def results(self) -> list[dict[str, Any]]:
        """The entry for each query: its first valid reply, else its first bad one, else a timeout."""
        out = []
        for qtype, _rdtype, tid, t0 in self.queries.values():
            if qtype in self.first:
                out.append(self.first[qtype])
            elif qtype in self.first_bad:
                entry = dict(self.first_bad[qtype])
                self.extra.remove(self.first_bad[qtype])
                self.first[qtype] = entry
                out.append(entry)
            else:
                entry = query_entry(
                    self.hostname, qtype, "udp", self.resolver_address, failure="generic_timeout_error",
                    answers=[], t0=t0, t=self.trace.now(), depth=self.depth, tid=tid,
                )  # fmt: skip
                self.first[qtype] = entry
                out.append(entry)
        return out

    def close(self) -> list[dict[str, Any]]:
        """Stop listening; return every extra reply seen so far."""
        if self.resend is not None:
            self.resend.cancel()
        if self.transport is not None:
            self.transport.close()
        return self.extra


Reading = tuple[str | None, list[dict[str, Any]], bool]  # failure, answers, valid


def read_reply(data: bytes, qid: int, qname: dns.name.Name, question: bytes, rdtype: int) -> Reading:
    """A reply to our query ``qid``: the plain shape by hand, anything else with dnspython."""
    plain = plain_reply(data, qid, question, rdtype)
    if plain is None:
        return read_with_dnspython(data, qid, qname, rdtype)
    rcode, records = plain
    answers = [address_answer(address, ttl) for _type, address, ttl in records]
    return _failure(rcode, any(t == rdtype for t, _address, _ttl in records)), answers, True


def read_with_dnspython(data: bytes, qid: int, qname: dns.name.Name, rdtype: int) -> Reading:
    """A malformed reply, or one that does not answer our question, is not valid: it is kept but
    does not end the wait for a valid one."""
    try:
        reply = dns.message.from_wire(data)
        if not is_response(reply, qid, qname, rdtype):
            raise MeasurementFailure("dns_server_misbehaving", "reply does not match the question")
    except Exception as exc:
        return classify(exc), [], False
    return *_parse(reply, rdtype), True


def query_wire(qid: int, question: bytes, rdtype: int) -> bytes:
    """What ``dns.message.make_query(name, type).to_wire()`` sends: RD set, one IN question, no EDNS."""
    return struct.pack("!HHHHHH", qid, dns.flags.RD, 1, 0, 0, 0) + question + struct.pack("!HH", rdtype, 1)


_NO_QUESTION_NEEDED = frozenset({dns.rcode.FORMERR, dns.rcode.SERVFAIL, dns.rcode.NOTIMP, dns.rcode.REFUSED})


def is_response(reply: dns.message.Message, qid: int, qname: dns.name.Name, rdtype: int) -> bool:
    """dnspython's ``Message.is_response`` for our queries (opcode QUERY, one IN question)."""
    if not reply.flags & dns.flags.QR or reply.id != qid or dns.opcode.from_flags(reply.flags) != 0:
        return False
    if not reply.question:
        return reply.rcode() in _NO_QUESTION_NEEDED
    if len(reply.question) != 1:
        return False
    q = reply.question[0]
    return bool(q.name == qname and q.rdtype == rdtype and q.rdclass == dns.rdataclass.IN)


def _parse(reply: dns.message.Message, rdtype: int) -> tuple[str | None, list[dict[str, Any]]]:
    answers: list[dict[str, Any]] = []
    wanted = 0
    for rrset in reply.answer:
        if rrset.rdclass != dns.rdataclass.IN:
            continue  # an address of another class (CHAOS, say) has no address form: not an answer
        for rdata in rrset:
            if rdata.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                answers.append(address_answer(rdata.address, rrset.ttl))
                wanted += rdata.rdtype == rdtype
            elif rdata.rdtype == dns.rdatatype.CNAME:
                name = rdata.target.to_text(omit_final_dot=True)
                answers.append({"answer_type": "CNAME", "hostname": name, "ttl": rrset.ttl})
    return _failure(reply.rcode(), wanted > 0), answers


def _failure(rcode: int, wanted: bool) -> str | None:
    if rcode != dns.rcode.NOERROR:
        return _RCODE_FAILURES.get(rcode, "dns_server_misbehaving")
    return None if wanted else "dns_no_answer"


async def start_udp_lookup(hostname: str, resolver: tuple[str, int], trace: Trace, depth: int) -> UdpLookup:
    """Send the queries; the returned lookup keeps listening until close()."""
    loop = asyncio.get_running_loop()
    _, lookup = await loop.create_datagram_endpoint(
        lambda: UdpLookup(hostname, resolver, trace, depth), remote_addr=resolver
    )
    return lookup


async def wait_answered(lookup: UdpLookup, timeout: float) -> list[dict[str, Any]]:
    """Wait (at most ``timeout``) for a valid reply to each query; return the ``queries`` entries."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await asyncio.shield(lookup.answered)
    return lookup.results()
