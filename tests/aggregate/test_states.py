from __future__ import annotations

import pytest

from reachwatch.aggregate import RULES, STATES, CellCounts, Thresholds, decide_state

# One case per rule: counts for which that rule (and no earlier one) decides.
CASES = {
    "cell.empty": CellCounts(),
    "cell.fingerprint": CellCounts(n_measurements=1, n_probes=1, n_blocked=1, n_confirmed=1),
    "cell.dns_artefact": CellCounts(n_measurements=1, n_probes=1, n_blocked=1, n_dns_artefact=1),
    "cell.technique_probes": CellCounts(n_measurements=9, n_probes=3, n_blocked=3, max_technique_probes=3),
    "cell.unjudged": CellCounts(n_measurements=4, n_probes=4, n_control_failure=4),
    "cell.few_probes": CellCounts(n_measurements=5, n_probes=1, n_blocked=5, max_technique_probes=1),
    "cell.down": CellCounts(n_measurements=4, n_probes=2, n_down=3, n_accessible=1),
    "cell.likely_blocked": CellCounts(
        n_measurements=6, n_probes=2, n_blocked=5, n_accessible=1, max_technique_probes=2
    ),
    "cell.impaired": CellCounts(n_measurements=10, n_probes=4, n_blocked=1, n_throttled=2, n_accessible=7),
    "cell.ok": CellCounts(n_measurements=10, n_probes=4, n_accessible=10),
    "cell.undecided": CellCounts(n_measurements=3, n_probes=3),
}


def test_rule_ids_are_unique_and_commented() -> None:
    ids = [r.rule_id for r in RULES]
    assert len(ids) == len(set(ids))
    assert all(r.comment.strip() for r in RULES)
    assert all(r.state in STATES for r in RULES)


def test_every_rule_has_a_case() -> None:
    assert set(CASES) == {r.rule_id for r in RULES}


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.rule_id)
def test_rule_decides_its_case(rule: object) -> None:
    assert decide_state(CASES[rule.rule_id]) == (rule.state, rule.rule_id)  # type: ignore[attr-defined]


def test_no_data_is_never_ok() -> None:
    for counts in (CellCounts(), CellCounts(n_measurements=5, n_probes=5, n_control_failure=5)):
        assert decide_state(counts)[0] == "insufficient"


def test_thresholds_are_configurable() -> None:
    one_probe_ok = CellCounts(n_measurements=3, n_probes=1, n_accessible=3)
    assert decide_state(one_probe_ok)[0] == "insufficient"
    assert decide_state(one_probe_ok, Thresholds(min_probes=1)) == ("ok", "cell.ok")


def test_share_and_interval_ignore_unjudged() -> None:
    c = CellCounts(n_measurements=12, n_probes=3, n_blocked=5, n_control_failure=2)
    assert c.n_judged == 10 and c.blocked_share == 0.5
    low, high = c.blocked_interval()
    assert low == pytest.approx(0.236593, abs=1e-5) and high == pytest.approx(0.763407, abs=1e-5)
