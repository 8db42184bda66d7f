"""Property: any JSON put anywhere in a measurement gets a verdict, never an exception.

The compiled verdict engine (mypyc) checks declared types at run time, so a value of the wrong
type that plain Python would have let through could raise there: this runs both ways in CI
(the suite runs compiled; ``test_compiled.py`` reruns the corpus as plain Python).
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_techniques import CENSORSHIP, NOT_CENSORSHIP
from verdict_builders import redirected, single

from reachwatch.analyze.work import _Finder
from reachwatch.collector.analysis import verdict_values
from reachwatch.fingerprints.match import FingerprintMatcher
from reachwatch.fingerprints.model import Fingerprint
from reachwatch.verdict import Verdict, decide

BASES = [
    build(f"{scheme}://site.example/", probe, ctrl)
    for _, schemes, probe, ctrl, *_ in CENSORSHIP + NOT_CENSORSHIP
    for scheme in schemes
    for build in (single, redirected)
]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def hostile(draw: st.DrawFn) -> dict[str, Any]:
    """A lab-like measurement with 1-4 values replaced, at any depth, by arbitrary JSON."""
    m = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 4))):
        node: Any = m
        while True:
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            if not keys:
                break
            key = draw(st.sampled_from(keys))
            child = node[key]
            if isinstance(child, dict | list) and child and draw(st.booleans()):
                node = child
                continue
            node[key] = draw(JSON)
            break
    return m


FINGERPRINTS = [
    Fingerprint("fp_body", "body", "contains", "blocked", scope="nat"),
    Fingerprint("fp_header", "header.server", "prefix", "dpi", scope="isp"),
    Fingerprint("fp_dns", "dns", "full", "10.10.34.35", scope="isp"),
]
MATCHER = FingerprintMatcher(FINGERPRINTS)
FINDER = _Finder(FINGERPRINTS)  # the analysis worker's cached matcher


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile())
def test_any_json_anywhere_gets_a_verdict(m: dict[str, Any]) -> None:
    assert isinstance(decide(m), Verdict)
    verdict_values(m)  # the stored columns
    MATCHER.match(m)
    FINDER.find(m, responses=True)
