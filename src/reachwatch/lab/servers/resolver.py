"""The censoring resolver in the router: one per ISP, applying that ISP's DNS rules.

The router DNATs the ISP's port-53 traffic for the real resolver here, so answers still seem to
come from the real resolver. Rules (by exact name): ``answer`` an address, ``nxdomain``, or
``drop`` (never answer). Everything else is forwarded to the real resolver.
"""

from __future__ import annotations

from collections.abc import Callable

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from reachwatch.lab.servers.dns import TTL

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


class CensoringResolver:
    def __init__(self, rules: dict[str, dict[str, str]], upstream: str) -> None:
        self.rules = {f"{host}.": rule for host, rule in rules.items()}
        self.upstream = upstream

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
