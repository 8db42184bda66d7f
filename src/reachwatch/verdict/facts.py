"""Facts: the few derived values the verdict rules look at, computed once per measurement."""

from __future__ import annotations

from dataclasses import dataclass

from reachwatch.observations import Observations
from reachwatch.verdict.dns import NO_FINDING, DNSFinding, hop_finding, system_lookups
from reachwatch.verdict.httpdiff import NO_DIFF, HTTPDiff, compare
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

    @property
    def dns_inconsistent(self) -> bool:
        return self.dns_depth is not None

    @property
    def depth(self) -> int:
        return self.event.depth if self.event is not None else 0


def facts_of(obs: Observations) -> Facts:
    lookups = system_lookups(obs.dns)
    asn: dict[str, int] = {}
    for control in obs.controls:
        if control is not None:
            asn.update(control.ip_asn)
    tls_valid = {
        (s.server_name, s.ip)
        for s in obs.tls
        if s.failure is None and not s.no_tls_verify and s.fetch_body is not False
    }
    first = hop_finding((q for q in lookups if q.depth == 0), obs.control_for(0), asn, tls_valid)
    dns_depth, technique = (0, first.technique) if first.consistency == "inconsistent" else (None, None)
    if dns_depth is None:
        # ours: later hops measured with their own control (x_controls), deepest first
        for depth in range(len(obs.controls) - 1, 0, -1):
            hop = hop_finding((q for q in lookups if q.depth == depth), obs.controls[depth], asn, tls_valid)
            if hop.consistency == "inconsistent":
                dns_depth, technique = depth, hop.technique
                break
    eps = endpoints(obs, lookups)
    event = find_event(obs, eps, lookups)
    diff = NO_DIFF
    final = event.http if event is not None and event.kind == "final" else None
    if final is not None:
        page = obs.control_for(final.depth) or obs.control_for(0)
        diff = compare(final, page.http if page else None)
    return Facts(
        test_name=obs.test_name,
        has_test_keys=obs.has_test_keys,
        control_available=obs.control_for(0) is not None,
        dns=first if first is not NO_FINDING else NO_FINDING,
        dns_depth=dns_depth,
        dns_technique=technique,
        diff=diff,
        event=event,
    )
