"""Facts: the few derived values the verdict rules look at, computed once per measurement."""

from __future__ import annotations

from dataclasses import dataclass

from reachwatch.verdict.dns import NO_FINDING, DNSFinding, hop_finding
from reachwatch.verdict.httpdiff import NO_DIFF, HTTPDiff, compare
from reachwatch.verdict.reader import Reading
from reachwatch.verdict.walk import Event, endpoints, find_event


@dataclass(slots=True)  # not frozen: cheaper to build (see observations.records)
class Facts:
    test_name: str | None
    has_test_keys: bool
    control_available: bool
    dns: DNSFinding  # OONI's dns_consistency: the first hop's system-resolver lookups
    dns_depth: int | None  # the hop where DNS was found inconsistent (ours: any hop with a control)
    dns_technique: str | None
    diff: HTTPDiff  # final response vs control
    event: Event | None

    def __init__(
        self,
        test_name: str | None,
        has_test_keys: bool,
        control_available: bool,
        dns: DNSFinding,
        dns_depth: int | None,
        dns_technique: str | None,
        diff: HTTPDiff,
        event: Event | None,
    ) -> None:
        # by hand, so that mypyc compiles it (see observations.records)
        self.test_name = test_name
        self.has_test_keys = has_test_keys
        self.control_available = control_available
        self.dns = dns
        self.dns_depth = dns_depth
        self.dns_technique = dns_technique
        self.diff = diff
        self.event = event

    @property
    def dns_inconsistent(self) -> bool:
        return self.dns_depth is not None

    @property
    def depth(self) -> int:
        return self.event.depth if self.event is not None else 0


def facts_of(reading: Reading) -> Facts:
    """DNS consistency per hop, the deciding event and the HTTP diff of a final response."""
    if not reading.has_test_keys:  # nothing was read: no finding, no event, no diff
        return Facts(reading.test_name, False, False, NO_FINDING, None, None, NO_DIFF, None)
    first, dns_depth, technique = _dns_facts(reading)
    event = find_event(reading, endpoints(reading))
    diff = NO_DIFF
    final = event.http if event is not None and event.kind == "final" else None
    if final is not None:
        page = reading.hop(final.depth) or reading.hops[0]
        diff = compare(final, page.http if page else None)
    return Facts(
        reading.test_name, True, reading.hops[0] is not None, first, dns_depth, technique, diff, event
    )


def _dns_facts(reading: Reading) -> tuple[DNSFinding, int | None, str | None]:
    """OONI's first-hop ``dns_consistency``, and the hop where DNS is inconsistent (if any):
    the first hop, else (ours: later hops have their own control) the deepest such hop."""
    lookups, hops, evidence = reading.lookups, reading.hops, reading.evidence
    first = hop_finding(lookups, 0, hops[0], evidence)
    if first.consistency == "inconsistent":
        return first, 0, first.technique
    for depth in range(len(hops) - 1, 0, -1):
        if hops[depth] is None:
            continue
        hop = hop_finding(lookups, depth, hops[depth], evidence)
        if hop.consistency == "inconsistent":
            return first, depth, hop.technique
    return first, None, None
