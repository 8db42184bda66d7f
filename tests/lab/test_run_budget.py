"""`lab run` bounds what the whole lab has in flight (no root needed)."""

from __future__ import annotations

from reachwatch.lab.run import (
    IN_FLIGHT_PER_CORE,
    LAB_PARALLEL_MAX,
    Timeouts,
    summary,
    vantage_parallel,
    vantage_workers,
)
from reachwatch.probe.config import DEFAULT_PARALLEL


def test_each_vantage_gets_a_share_of_the_labs_budget() -> None:
    """Ten vantages at --parallel 200 on 2 cores put 2,000 measurements in flight at ~200/s:
    each waited ~10 s, past the probes' timeouts, and clean ISPs got blocking verdicts."""
    assert vantage_parallel(200, 10, 2) == 2 * IN_FLIGHT_PER_CORE // 10 == 40
    assert vantage_parallel(None, 3, 2) == 2 * IN_FLIGHT_PER_CORE // 3  # unasked: the share
    assert vantage_parallel(None, 2, 64) == LAB_PARALLEL_MAX  # ... up to a bound
    assert vantage_parallel(DEFAULT_PARALLEL, 3, 2) == DEFAULT_PARALLEL  # few vantages: as asked
    assert vantage_parallel(7, 3, 2) == 7
    assert vantage_parallel(None, 10_000, 2) == 1  # never zero
    for vantages in (1, 3, 9, 12, 40):
        assert vantages * vantage_parallel(500, vantages, 2) <= max(vantages, 2 * IN_FLIGHT_PER_CORE)


def test_the_cores_are_shared_out_among_the_vantages_probes() -> None:
    assert vantage_workers(3, 2) == 1  # an ISP, another, the control vantage: one process each
    assert vantage_workers(2, 8) == 4
    assert vantage_workers(50, 2) == 1  # never zero
    assert Timeouts(workers=1).flags() == ["--workers", "1"]


def test_the_summary_says_when_the_budget_capped_parallel() -> None:
    assert summary([], 200) == ""
    assert "capped" not in vantage_note(1, 50)
    assert "capped" in vantage_note(10_000, 200)  # on any machine: 200 per core is below 10,000


def vantage_note(vantages: int, parallel: int) -> str:
    from pathlib import Path

    from reachwatch.lab.run import VantageResult
    from reachwatch.lab.state import Vantage

    v = Vantage(ns="x-isp1", name="ISP", asn=64501, cc="ZZ", ip="100.64.1.2")
    results = [VantageResult(v, Path("x.jsonl"), 0, 1.0, "") for _ in range(vantages)]
    return summary(results, parallel).splitlines()[0]
