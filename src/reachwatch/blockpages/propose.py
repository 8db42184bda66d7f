"""From a cluster of unknown blockpages to a fingerprint proposal a human can review and save.

The proposed pattern is a ``contains`` pattern: a verbatim substring of the bodies, verified to
occur in every member body and in no control body (pages of measurements judged accessible).
Tried in order: the ``<title>`` element, then runs of text between tags (longest first, those
without digits before those with), each cut to at most 100 characters at a word boundary.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlsplit

from reachwatch.blockpages.cluster import Cluster
from reachwatch.blockpages.normalise import text_segments
from reachwatch.fingerprints.model import Fingerprint

MAX_PATTERN = 100
MIN_PATTERN = 8
_TITLE_TAG = re.compile(r"<title[^>]*>.*?</title\s*>", re.IGNORECASE | re.DOTALL)
_SLUG = re.compile(r"[a-z0-9]+")
_TAG = re.compile(r"<[^>]*>")


@dataclass(frozen=True, slots=True)
class Candidate:
    """A proposed fingerprint for one cluster."""

    name: str
    pattern: str | None  # None: no substring is common to all members and absent from controls
    scope: str
    n_measurements: int
    n_inputs: int
    networks: tuple[tuple[str, str, int], ...]  # (probe_asn, probe_cc, measurements)
    example_uid: str
    example_input: str
    excerpt: str

    @property
    def countries(self) -> tuple[str, ...]:
        return tuple(sorted({cc for _, cc, _ in self.networks}))

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "pattern": self.pattern,
            "scope": self.scope,
            "n_measurements": self.n_measurements,
            "n_inputs": self.n_inputs,
            "networks": [{"probe_asn": a, "probe_cc": c, "measurements": n} for a, c, n in self.networks],
            "example_uid": self.example_uid,
            "example_input": self.example_input,
            "excerpt": self.excerpt,
        }

    def to_fingerprint(self) -> Fingerprint:
        if self.pattern is None:
            raise ValueError(f"{self.name}: no pattern to save")
        nets = " ".join(f"{asn}/{cc}" for asn, cc, _ in self.networks)
        return Fingerprint(
            name=self.name,
            location="body",
            pattern_type="contains",
            pattern=self.pattern,
            scope=self.scope,
            confidence_no_fp=5,
            expected_countries=self.countries,
            source="reachwatch blockpages",
            notes=(
                f"proposed from {self.n_measurements} measurements on {nets}; "
                f"example {self.example_uid} {self.example_input}"
            ),
        )


def _cut(text: str) -> str:
    if len(text) <= MAX_PATTERN:
        return text
    head = text[:MAX_PATTERN]
    return head.rsplit(" ", 1)[0] if " " in head else head


def _hosts(cluster: Cluster) -> set[str]:
    hosts = set()
    for m in cluster.members:
        host = urlsplit(m.input).hostname if "://" in m.input else m.input
        if host:
            hosts.add(host.lower())
    return hosts


def propose_pattern(cluster: Cluster, controls: list[str]) -> str | None:
    """The first distinctive substring present in every member body and in no control."""
    bodies = sorted({m.body for m in cluster.members}, key=len)
    shortest = bodies[0]
    hosts = _hosts(cluster)
    tried: list[str] = []
    title = _TITLE_TAG.search(shortest)
    if title:
        tried.append(title.group(0))
    segments = [_cut(s) for s in text_segments(shortest)]
    segments.sort(key=lambda s: (any(c.isdigit() for c in s), -len(s)))
    tried.extend(segments)
    for pattern in tried:
        if len(pattern) < MIN_PATTERN or not any(c.isalpha() for c in pattern):
            continue
        if any(h in pattern.lower() for h in hosts):
            continue  # the blocked site's own name: not a property of the blockpage
        if all(pattern in b for b in bodies) and not any(pattern in c for c in controls):
            return pattern
    return None


def _scope(networks: Counter[tuple[str, str]]) -> str:
    asns = {asn for asn, _ in networks}
    ccs = {cc for _, cc in networks}
    if len(asns) == 1:
        return "isp"
    return "nat" if len(ccs) == 1 else "prod"


def _name(cc: str, pattern: str | None, index: int, taken: set[str]) -> str:
    words = _SLUG.findall(_TAG.sub(" ", pattern or "").lower())[:3]
    base = f"local.{cc.lower()}_{'_'.join(words) if words else index}"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def propose(clusters: list[Cluster], controls: list[str], *, min_count: int = 2) -> list[Candidate]:
    """One candidate per cluster seen in at least ``min_count`` measurements, largest first."""
    out: list[Candidate] = []
    taken: set[str] = set()
    ranked = sorted(clusters, key=lambda c: -c.n_measurements)
    for index, cluster in enumerate(ranked, start=1):
        if cluster.n_measurements < min_count:
            continue
        seen: dict[tuple[str, str], set[str]] = {}
        for m in cluster.members:
            seen.setdefault((m.probe_asn, m.probe_cc), set()).add(m.uid)
        networks = Counter({net: len(uids) for net, uids in seen.items()})
        pattern = propose_pattern(cluster, controls)
        by_cc: Counter[str] = Counter()
        for (_, cc), n in networks.items():
            by_cc[cc] += n
        top_cc = by_cc.most_common(1)[0][0]
        first = cluster.members[0]
        out.append(
            Candidate(
                name=_name(top_cc, pattern, index, taken),
                pattern=pattern,
                scope=_scope(networks),
                n_measurements=cluster.n_measurements,
                n_inputs=len({m.input for m in cluster.members}),
                networks=tuple((asn, cc, n) for (asn, cc), n in sorted(networks.items())),
                example_uid=first.uid,
                example_input=first.input,
                excerpt=cluster.text[:160],
            )
        )
    return out
