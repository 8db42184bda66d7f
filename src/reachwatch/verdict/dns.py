"""DNS consistency: do the probe's answers agree with the control's? (OONI's classic rules.)

For one hop, over the system-resolver lookups (getaddrinfo-like engines) of the hop's host:

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

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from reachwatch.observations import Control, DNSLookup
from reachwatch.verdict.bogon import is_sink

SYSTEM_ENGINES: Final = frozenset({"getaddrinfo", "system", "golang_net_resolver", "go", ""})
TIMEOUT_FAILURES: Final = frozenset({"generic_timeout_error", "dns_temporary_failure"})


@dataclass(frozen=True, slots=True)
class DNSFinding:
    consistency: str | None  # "consistent" | "inconsistent" | None (cannot say)
    technique: str | None  # when inconsistent: dns-bogon | dns-hijack | dns-nxdomain | dns-timeout


NO_FINDING: Final = DNSFinding(None, None)


def system_lookups(lookups: Iterable[DNSLookup]) -> tuple[DNSLookup, ...]:
    """The lookups that chose the addresses the page was fetched from (OONI's classic filter).

    Measurements without any getaddrinfo-like lookup fall back to every non-DoH lookup.
    """
    first = [q for q in lookups if not q.duplicate]
    chosen = [q for q in first if q.engine in SYSTEM_ENGINES]
    return tuple(chosen or [q for q in first if q.engine != "doh"])


def failure_technique(failure: str) -> str:
    """A resolver failure as a technique: a timeout, or a denial (NXDOMAIN, REFUSED, ...)."""
    return "dns-timeout" if failure in TIMEOUT_FAILURES or "timeout" in failure else "dns-nxdomain"


def is_aaaa_no_answer(lookup: DNSLookup) -> bool:
    return lookup.query_type == "AAAA" and lookup.failure == "dns_no_answer"


def hop_finding(
    lookups: Iterable[DNSLookup],
    control: Control | None,
    asn: Mapping[str, int],
    tls_valid: Collection[tuple[str, str]],
) -> DNSFinding:
    """Judge the lookups of one hop against that hop's control (see the module docstring)."""
    if control is None or control.dns is None:
        return NO_FINDING
    ctrl = control.dns
    ctrl_addrs = frozenset(ctrl.addrs)
    ctrl_asns = {asn.get(a, 0) for a in ctrl_addrs} - {0}
    valid = expected = succeeded = 0
    unexpected: str | None = None
    invalid: list[str] = []
    for q in lookups:
        if q.hostname != control.hostname or is_aaaa_no_answer(q):
            continue
        if q.failure is not None:
            if ctrl.failure is not None or (q.failure == "dns_no_answer" and not ctrl_addrs):
                expected += 1
            elif unexpected is None:
                unexpected = q.failure
            continue
        if not q.addrs:
            continue
        succeeded += 1
        if ctrl.failure is not None:
            continue
        if (
            not ctrl_addrs.isdisjoint(q.addrs)
            or any(asn.get(a, 0) in ctrl_asns for a in q.addrs)
            or any((q.hostname, a) in tls_valid for a in q.addrs)
        ):
            valid += 1
        else:
            invalid.extend(a for a in q.addrs if a not in ctrl_addrs)
    if invalid:
        return DNSFinding("inconsistent", "dns-bogon" if all(map(is_sink, invalid)) else "dns-hijack")
    if unexpected is not None:
        return DNSFinding("inconsistent", failure_technique(unexpected))
    if valid or expected:
        return DNSFinding("consistent", None)
    if succeeded and not ctrl_addrs:
        return DNSFinding("inconsistent", "dns-hijack")
    return NO_FINDING
