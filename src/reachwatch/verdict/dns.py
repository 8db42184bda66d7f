"""DNS consistency: do the probe's answers agree with the control's? (OONI's classic rules.)

For one hop, over the system-resolver lookups (getaddrinfo-like engines; every non-DoH engine
when there is none: OONI's classic filter, applied by ``verdict.reader``) of the hop's host:

- a successful lookup is *valid* when it shares an IP address with the control, or an ASN
  (from the control's ``ip_info``; ASN 0 = unknown never matches), or - ours, as in OONI's
  non-classic engine - one of its addresses completed a verified TLS handshake for the host
  while fetching the page; otherwise it is *invalid*;
- a failed lookup is *expected* when the control failed too (or the probe got no answer and the
  control resolved nothing), *unexpected* when only the probe failed; ``dns_no_answer`` for
  AAAA is ignored (many sites have no IPv6);
- consistent: nothing invalid or unexpected, and something valid or expected;
- inconsistent: something invalid or unexpected, or the probe resolved names the control did not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from reachwatch.verdict.bogon import is_sink

if TYPE_CHECKING:
    from reachwatch.observations import TLSHandshake
    from reachwatch.verdict.control import Hop
    from reachwatch.verdict.reader import Lookup

# OONI's classic filter: the lookups that chose the addresses the page was fetched from
SYSTEM_ENGINES: Final = frozenset({"getaddrinfo", "system", "golang_net_resolver", "go", ""})
TIMEOUT_FAILURES: Final = frozenset({"generic_timeout_error", "dns_temporary_failure"})


@dataclass(frozen=True, slots=True)
class DNSFinding:
    consistency: str | None  # "consistent" | "inconsistent" | None (cannot say)
    technique: str | None  # when inconsistent: dns-bogon | dns-hijack | dns-nxdomain | dns-timeout


NO_FINDING: Final = DNSFinding(None, None)
CONSISTENT: Final = DNSFinding("consistent", None)
DNS_TECHNIQUES: Final = ("dns-bogon", "dns-hijack", "dns-nxdomain", "dns-timeout")
INCONSISTENT: Final = {t: DNSFinding("inconsistent", t) for t in DNS_TECHNIQUES}  # one instance each


class Evidence:
    """What else can validate an answer, shared by every hop and built once, on first use:
    the ASN of each address (all controls' ``ip_info``, later hops overriding earlier ones) and
    the (host, ip) pairs of verified TLS handshakes made to fetch the page."""

    __slots__ = ("_asn", "_handshakes", "_hops", "_tls_valid")

    def __init__(self, hops: Sequence[Hop | None], handshakes: Sequence[TLSHandshake]) -> None:
        self._hops, self._handshakes = hops, handshakes
        self._asn: dict[str, int] | None = None
        self._tls_valid: set[tuple[str, str]] | None = None

    def asn(self) -> Mapping[str, int]:
        if self._asn is None:
            self._asn = {}
            for hop in self._hops:
                if hop is not None:
                    self._asn.update(hop.ip_asn)
        return self._asn

    def tls_valid(self) -> set[tuple[str, str]]:
        if self._tls_valid is None:
            self._tls_valid = {
                (s.server_name, s.ip)
                for s in self._handshakes
                if s.failure is None and not s.no_tls_verify and s.fetch_body is not False
            }
        return self._tls_valid


def failure_technique(failure: str) -> str:
    """A resolver failure as a technique: a timeout, or a denial (NXDOMAIN, REFUSED, ...)."""
    return "dns-timeout" if failure in TIMEOUT_FAILURES or "timeout" in failure else "dns-nxdomain"


def is_aaaa_no_answer(lookup: Lookup) -> bool:
    return lookup.query_type == "AAAA" and lookup.failure == "dns_no_answer"


def hop_finding(
    lookups: Iterable[Lookup], depth: int, hop: Hop | None, evidence: Callable[[], Evidence]
) -> DNSFinding:
    """Judge the lookups of one hop (those at ``depth``) against that hop's control (see the
    module docstring). ``evidence`` gives the shared :class:`Evidence`, built on first use."""
    ctrl = hop.dns if hop is not None else None
    if hop is None or ctrl is None:
        return NO_FINDING
    ctrl_addrs = ctrl.addrs
    ctrl_set: frozenset[str] | None = None
    ctrl_asns: set[int] | None = None
    ctrl_failed = ctrl.failure is not None
    hostname = hop.hostname
    valid = expected = succeeded = 0
    sunk_only = True  # every answer to a name the control could not resolve is a sink (bogon)
    unexpected: str | None = None
    invalid: list[str] = []
    for q in lookups:
        if q.depth != depth or q.hostname != hostname:
            continue  # another hop or another host
        failure = q.failure
        if failure is not None:
            if failure == "dns_no_answer" and q.query_type == "AAAA":
                continue  # AAAA without answer: ignored (many sites have no IPv6)
            if ctrl_failed or (failure == "dns_no_answer" and not ctrl_addrs):
                expected += 1
            elif unexpected is None:
                unexpected = failure
            continue
        addrs = q.addrs
        if not addrs:
            continue
        succeeded += 1
        if ctrl_failed:
            if sunk_only and not all(map(is_sink, addrs)):
                sunk_only = False
            continue
        if ctrl_set is None:
            ctrl_set = frozenset(ctrl_addrs)
        if not ctrl_set.isdisjoint(addrs):
            valid += 1
            continue
        found = evidence()
        asn = found.asn()
        if ctrl_asns is None:
            ctrl_asns = {asn.get(a, 0) for a in ctrl_set} - {0}
        tls_valid = found.tls_valid()
        if any(asn.get(a, 0) in ctrl_asns for a in addrs) or any((hostname, a) in tls_valid for a in addrs):
            valid += 1
        else:
            invalid.extend(a for a in addrs if a not in ctrl_set)
    if invalid:
        return INCONSISTENT["dns-bogon" if all(map(is_sink, invalid)) else "dns-hijack"]
    if unexpected is not None:
        return INCONSISTENT[failure_technique(unexpected)]
    if valid or expected:
        return CONSISTENT
    if succeeded and not ctrl_addrs:
        # a name the control could not resolve, answered here: with only sinks (10.10.34.35,
        # 127.0.0.1) the resolver sank it, as for a name that exists
        return INCONSISTENT["dns-bogon" if sunk_only else "dns-hijack"]
    return NO_FINDING
