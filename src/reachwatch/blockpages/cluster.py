"""Group the bodies of blocked measurements into candidate blockpages.

Which bodies: those of measurements whose verdict is an HTTP difference or a DNS hijack (a body
served by whatever the hijacked answer pointed to). The verdict is read from ``test_keys``
(``x_technique`` / ``blocking``); when neither is there, ``reachwatch.verdict.decide`` computes it
if that module is installed. Bodies that match a known fingerprint are *labelled* with it and not
clustered; bodies of measurements judged accessible are kept as *controls* (a proposed pattern
must match none of them).

How: bodies are normalised (:mod:`.normalise`), identical normalised texts merged, then each
distinct text joins the most similar existing cluster when the Jaccard similarity of the word sets
is >= ``threshold`` (else it starts one). Why not shingles + MinHash: after merging identical
texts a run has hundreds to a few thousand distinct blockpage texts, not millions, so exact
Jaccard over word sets (found through a word -> cluster index) is fast, deterministic and needs
no tuning of hash counts or bands; word sets also ignore the reordering and small insertions
(a blocked URL, a date) that separate two copies of one template.
"""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reachwatch.blockpages.normalise import normalise, words
from reachwatch.fingerprints.match import FingerprintMatcher, body_text

BLOCKED_TECHNIQUES = frozenset({"http-blockpage", "dns-hijack"})
BLOCKED_OONI = frozenset({"http-diff", "dns"})
DEFAULT_THRESHOLD = 0.6
MAX_CONTROLS = 5000


@dataclass(frozen=True, slots=True)
class Member:
    """One response body of one blocked measurement."""

    uid: str
    input: str
    probe_cc: str
    probe_asn: str
    body: str


@dataclass(slots=True)
class Cluster:
    words: frozenset[str]
    text: str  # the normalised text of the first (most frequent) member
    members: list[Member] = field(default_factory=list)

    @property
    def n_measurements(self) -> int:
        return len({m.uid for m in self.members})


@dataclass(slots=True)
class Collected:
    clusters: list[Cluster]
    labelled: Counter[str]  # fingerprint name -> bodies
    controls: list[str]  # bodies (and control titles) of accessible measurements
    n_measurements: int = 0
    n_blocked: int = 0
    n_unknown_verdict: int = 0


def verdict_of(measurement: Mapping[str, Any]) -> tuple[str | None, object] | None:
    """(x_technique, blocking) from test_keys, else from reachwatch.verdict.decide; None if unknown."""
    tk = measurement.get("test_keys")
    if not isinstance(tk, Mapping):
        return None
    if "x_technique" in tk or "blocking" in tk:
        return tk.get("x_technique"), tk.get("blocking")
    try:
        decide = getattr(importlib.import_module("reachwatch.verdict"), "decide", None)
    except ImportError:
        return None
    if decide is None:
        return None
    verdict = decide(measurement)
    return getattr(verdict, "x_technique", None), getattr(verdict, "blocking", None)


def is_blocked(technique: str | None, blocking: object) -> bool:
    return technique in BLOCKED_TECHNIQUES or blocking in BLOCKED_OONI


def _bodies(tk: Mapping[str, Any]) -> list[str]:
    out = []
    for request in tk.get("requests") or ():
        response = request.get("response") if isinstance(request, Mapping) else None
        body = body_text(response if isinstance(response, Mapping) else None)
        if body.strip():
            out.append(body)
    return out


def _uid(m: Mapping[str, Any], fallback: int) -> str:
    for key in ("measurement_uid", "id", "report_id"):
        value = m.get(key)
        if isinstance(value, str) and value:
            return value if key != "report_id" else f"{value}#{fallback}"
    return f"#{fallback}"


def collect(
    measurements: Iterable[Mapping[str, Any]],
    matcher: FingerprintMatcher | None = None,
    *,
    threshold: float = DEFAULT_THRESHOLD,
) -> Collected:
    """Read measurements once: label known blockpages, cluster the unknown ones, keep controls."""
    clusterer = Clusterer(threshold)
    out = Collected(clusters=clusterer.clusters, labelled=Counter(), controls=[])
    for i, m in enumerate(measurements):
        out.n_measurements += 1
        verdict = verdict_of(m)
        tk = m.get("test_keys")
        if verdict is None or not isinstance(tk, Mapping):
            out.n_unknown_verdict += 1
            continue
        technique, blocking = verdict
        if not is_blocked(technique, blocking):
            if (blocking is False or technique == "none") and len(out.controls) < MAX_CONTROLS:
                out.controls.extend(_bodies(tk))
                control = tk.get("control")
                http = control.get("http_request") if isinstance(control, Mapping) else None
                if isinstance(http, Mapping) and isinstance(http.get("title"), str) and http["title"]:
                    out.controls.append(http["title"])
            continue
        out.n_blocked += 1
        for body in _bodies(tk):
            known = matcher.match_body(body) if matcher is not None else []
            if known:
                out.labelled.update(fp.name for fp in known)
                continue
            member = Member(
                uid=_uid(m, i),
                input=str(m.get("input") or ""),
                probe_cc=str(m.get("probe_cc") or "ZZ"),
                probe_asn=str(m.get("probe_asn") or "AS0"),
                body=body,
            )
            clusterer.add(member)
    return out


class Clusterer:
    """Greedy leader clustering by Jaccard similarity of word sets, identical texts merged first."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD) -> None:
        if not 0 < threshold <= 1:
            raise ValueError("threshold must be in (0, 1]")
        self.threshold = threshold
        self.clusters: list[Cluster] = []
        self._by_text: dict[str, Cluster] = {}
        self._by_word: dict[str, list[int]] = {}

    def add(self, member: Member) -> Cluster | None:
        text = normalise(member.body)
        cluster = self._by_text.get(text)
        if cluster is None:
            ws = words(text)
            if not ws:
                return None  # nothing readable to compare (an empty or numbers-only page)
            cluster = self._nearest(ws)
            if cluster is None:
                cluster = Cluster(words=ws, text=text)
                for w in ws:
                    self._by_word.setdefault(w, []).append(len(self.clusters))
                self.clusters.append(cluster)
            self._by_text[text] = cluster
        cluster.members.append(member)
        return cluster

    def _nearest(self, ws: frozenset[str]) -> Cluster | None:
        shared: Counter[int] = Counter()
        for w in ws:
            shared.update(self._by_word.get(w, ()))
        best, best_score = None, 0.0
        for idx, common in sorted(shared.items()):  # ties go to the oldest cluster
            leader = self.clusters[idx].words
            score = common / (len(ws) + len(leader) - common)
            if score >= self.threshold and score > best_score:
                best, best_score = self.clusters[idx], score
        return best
