"""The per-measurement work of ``reachwatch analyze``: decode once, verdict, fingerprints.

Pure functions over plain tuples, so chunks can go to a process pool. The body and header
fingerprints run only where they can matter (measurements judged anomalous: a blockpage is an HTTP
difference, an injected page follows a DNS hijack); DNS answers are matched everywhere (cheap).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from reachwatch.collector.analysis import verdict
from reachwatch.fingerprints import Fingerprint, FingerprintMatcher
from reachwatch.fingerprints.match import dns_answers
from reachwatch.store.schema import decompress

#: The code whose change makes stored verdicts stale.
RULE_SOURCES = ("verdict", "observations", "collector/analysis.py")

#: In: (uid, raw, need_verdict, blocking, accessible, x_technique, x_rule, anomaly, failure)
Item = tuple[str, bytes, bool, str | None, bool | None, str | None, str | None, bool, bool]
#: Out: (uid, blocking, accessible, x_technique, x_rule, anomaly, failure, confirmed, fingerprint)
Result = tuple[str, str | None, bool | None, str | None, str | None, bool, bool, bool, str | None]


def rules_version() -> str:
    """A hash of the verdict code (rules, observations, the ingest mapping)."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for name in RULE_SOURCES:
        path = root / name
        for f in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def fingerprints_version(fps: Iterable[Fingerprint]) -> str:
    """A hash of the fingerprint set (order-independent); "none" without fingerprints."""
    rows = sorted(f"{f.name}\0{f.location}\0{f.pattern_type}\0{f.pattern}\0{f.scope}" for f in fps)
    if not rows:
        return "none"
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]


@dataclass
class Timings:
    decode: float = 0.0
    verdict: float = 0.0
    fingerprints: float = 0.0

    def add(self, other: Timings) -> None:
        self.decode += other.decode
        self.verdict += other.verdict
        self.fingerprints += other.fingerprints


_matcher: FingerprintMatcher | None = None


def init_worker(fps: Sequence[Fingerprint]) -> None:
    global _matcher
    _matcher = FingerprintMatcher(fps) if fps else None


def _fingerprint(m: Mapping[str, Any], anomalous: bool) -> tuple[bool, str | None]:
    matcher = _matcher
    if matcher is None:
        return False, None
    if anomalous:
        found = [(x.name, x.confirms_blocking) for x in matcher.match(m)]
    else:
        keys = m.get("test_keys")
        found = []
        if isinstance(keys, Mapping):
            found = [
                (fp.name, fp.confirms_blocking) for _, v in dns_answers(keys) for fp in matcher.match_dns(v)
            ]
    if not found:
        return False, None
    confirming = [name for name, ok in found if ok]
    return bool(confirming), (confirming or [found[0][0]])[0]


def analyse(items: Sequence[Item]) -> tuple[list[Result], Timings]:
    out: list[Result] = []
    t = Timings()
    clock = time.perf_counter
    for uid, raw, need_verdict, blocking, accessible, technique, rule, anomaly, failure in items:
        t0 = clock()
        try:
            m = orjson.loads(decompress(raw))
        except (orjson.JSONDecodeError, ValueError):
            m = {}
        t1 = clock()
        if need_verdict and isinstance(m, dict):
            v = verdict(m)
            blocking, accessible, technique, rule = v.blocking, v.accessible, v.x_technique, v.x_rule
            anomaly, failure = v.anomaly, v.failure
        t2 = clock()
        confirmed, name = _fingerprint(m, anomaly) if isinstance(m, dict) else (False, None)
        t3 = clock()
        t.decode += t1 - t0
        t.verdict += t2 - t1
        t.fingerprints += t3 - t2
        out.append((uid, blocking, accessible, technique, rule, anomaly, failure, confirmed, name))
    return out, t
