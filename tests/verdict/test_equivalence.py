"""Equivalence harness: decide() gives exactly the frozen verdicts on every corpus case.

The snapshot (verdict_snapshot.json, made by snapshot_verdicts.py with the engine before the
one-pass reader) holds the full ``as_test_keys()`` of ~5,700 measurements: the shared OONI ones,
the builder-made ones of tests/verdict, and random perturbations of both (equivalence_corpus.py).
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest
from equivalence_corpus import DATA, corpus
from snapshot_verdicts import SNAPSHOT

from reachwatch.verdict import decide


@cache
def _snapshot() -> dict[str, Any]:
    with SNAPSHOT.open(encoding="utf-8") as handle:
        snapshot: dict[str, Any] = json.load(handle)
    return snapshot


def _check(group: str) -> int:
    snapshot = _snapshot()
    keys, frozen = snapshot["keys"], snapshot["cases"]
    seen, stale, differ = 0, [], []
    for case_id, case_group, digest, m in corpus():
        if case_group != group:
            continue
        seen += 1
        expected = frozen.get(case_id)
        if expected is None or expected[1] != digest:
            stale.append(case_id)
            continue
        got = decide(m).as_test_keys()
        want = dict(zip(keys, expected[2], strict=True))
        if got != want:
            diff = {k: (want[k], got[k]) for k in keys if got[k] != want[k]}
            differ.append(f"{case_id}: {diff}")
    assert not stale, f"corpus changed, regenerate the snapshot with a trusted engine: {stale[:5]}"
    assert not differ, f"{len(differ)} verdicts changed (expected, got):\n" + "\n".join(differ[:20])
    assert seen == sum(1 for c in frozen.values() if c[0] == group), "snapshot cases missing from the corpus"
    return seen


def test_builder_cases_and_variants_unchanged() -> None:
    assert _check("builders") > 3000


@pytest.mark.shared_data
def test_ooni_cases_and_variants_unchanged() -> None:
    if not DATA.is_dir():
        pytest.skip(f"shared OONI data not found at {DATA}: only the builder cases were compared")
    assert _check("ooni") > 1500
