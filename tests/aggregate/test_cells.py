from __future__ import annotations

from typing import Any

from reachwatch.aggregate import Cell, CellAccumulator, aggregate
from reachwatch.aggregate.cells import probe_hash


def row(probe: str, uid: str, day: str = "2024-05-01", **kw: Any) -> dict[str, Any]:
    base = {
        "probe_cc": "PK",
        "probe_asn": "AS17557",
        "domain": "example.org",
        "day": day,
        "probe_id": probe,
        "blocking": False,
        "accessible": True,
        "x_technique": "none",
        "confirmed": None,
        "dns_hijack": False,
        "dns_bogon": False,
        "control_failure": None,
        "measurement_uid": uid,
    }
    base.update(kw)
    return base


def test_cells_group_and_decide() -> None:
    rows = [
        row("p1", "u1", blocking="dns", accessible=False, x_technique="dns-hijack", dns_hijack=True),
        row("p2", "u2"),
        row("p1", "u3", domain="ok.example"),
        row("p2", "u4", domain="ok.example"),
        row("p3", "u5", domain="ok.example", day="2024-05-02"),
    ]
    cells = {(c.key[2][1], c.key[3][1]): c for c in aggregate(rows)}
    hijacked = cells["example.org", "2024-05-01"]
    assert (hijacked.state, hijacked.rule_id) == ("blocked", "cell.dns_artefact")
    assert hijacked.witnesses == ("u1",) and hijacked.dominant_technique == "dns-hijack"
    assert hijacked.n_probes == 2 and hijacked.blocked_share == 0.5
    assert cells["ok.example", "2024-05-01"].state == "ok"
    assert cells["ok.example", "2024-05-02"].state == "insufficient"  # one probe only


def test_same_technique_from_three_probes_is_blocked() -> None:
    rows = [row(p, f"u{p}", blocking="tcp_ip", accessible=False, x_technique="tcp-timeout") for p in "abc"]
    [cell] = aggregate(rows)
    assert (cell.state, cell.rule_id) == ("blocked", "cell.technique_probes")
    assert cell.witnesses == ("ua", "ub", "uc")
    repeated = [
        row("a", f"u{i}", blocking="tcp_ip", accessible=False, x_technique="tcp-timeout") for i in range(9)
    ]
    assert aggregate(repeated)[0].state == "insufficient"  # nine times the same probe is still one probe


def test_grouping_keys_are_configurable() -> None:
    rows = [row("p1", "u1", domain="a.example"), row("p2", "u2", domain="b.example")]
    [cell] = aggregate(rows, keys=("probe_cc",))
    assert cell.key == (("probe_cc", "PK"),) and cell.n_measurements == 2 and cell.state == "ok"


def test_probes_are_hashed_and_seen_times_kept() -> None:
    acc = CellAccumulator()
    acc.add(row("secret-probe", "u1", measurement_start_time="2024-05-01 10:00:00"))
    acc.add(row("secret-probe", "u2", measurement_start_time="2024-05-01 08:00:00"))
    [cell] = acc.cells()
    assert "secret-probe" not in repr(acc.__dict__) and len(probe_hash("x")) == 8
    assert (cell.first_seen, cell.last_seen) == ("2024-05-01 08:00:00", "2024-05-01 10:00:00")


def test_counts_path_decides_like_the_row_path() -> None:
    rows = [
        row(p, f"u{p}", blocking="http-diff", accessible=False, x_technique="http-blockpage") for p in "ab"
    ]
    rows.append(row("c", "uc"))
    [cell] = aggregate(rows)
    again = Cell.from_counts(cell.key, cell.counts, dominant_technique="http-blockpage")
    assert (
        (again.state, again.rule_id)
        == (cell.state, cell.rule_id)
        == ("likely_blocked", "cell.likely_blocked")
    )
    assert cell.as_dict()["state"] == "likely_blocked" and cell.as_dict()["domain"] == "example.org"


def test_control_failures_are_not_ok() -> None:
    rows = [
        row(p, f"u{p}", accessible=None, blocking=None, control_failure="generic_timeout_error") for p in "ab"
    ]
    assert aggregate(rows)[0].state == "insufficient"
