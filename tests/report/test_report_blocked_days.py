"""Since when a network blocked a site: from the daily cells, never from the first measurement."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from reachwatch.errors import UserError
from reachwatch.report.blocked_days import BLOCKED_DAY, blocked_days, blocked_span, with_blocked_days
from reachwatch.report.model import BLOCKING_STATES, STATES, Cell, parse_cells, parse_summary

KEYS = {"probe_cc": "PK", "probe_asn": "AS64501", "domain": "news.example"}
COUNTS = {"n_measurements": 4, "n_probes": 2, "blocked_share": 0.0, "ci_low": 0.0, "ci_high": 0.5}


def _summary(**extra: Any) -> dict[str, Any]:
    return {**KEYS, **COUNTS, "state": "blocked", "first_seen": "2026-11-10T08:00:00Z",
            "last_seen": "2026-11-19T22:00:00Z", **extra}  # fmt: skip


def _cells(states: dict[int, str], **keys: str) -> list[Cell]:
    return parse_cells(
        {**KEYS, **keys, **COUNTS, "state": s, "day": dt.date(2026, 11, d)} for d, s in states.items()
    )


def test_the_rule_is_data_with_a_reason() -> None:
    assert BLOCKED_DAY.states == BLOCKING_STATES and BLOCKED_DAY.states <= set(STATES)
    assert "impaired" not in BLOCKED_DAY.states and "Impaired does not count" in BLOCKED_DAY.comment


def test_blocked_since_is_the_first_blocked_day_not_the_first_measurement() -> None:
    """The report's table showed the first measurement (10 Nov) beside "blocked" for networks
    that blocked from 14 Nov (an outside study, session 17)."""
    cells = _cells({10: "ok", 11: "impaired", 12: "insufficient", 13: "down", 14: "likely_blocked",
                    15: "blocked", 16: "ok", 17: "blocked", 19: "ok"})  # fmt: skip
    (row,) = with_blocked_days(parse_summary([_summary()]), cells)
    assert (row.blocked_since, row.last_blocked, row.blocked_days) == (
        dt.date(2026, 11, 14),
        dt.date(2026, 11, 17),
        3,
    )
    assert row.first_seen == "2026-11-10T08:00:00Z"  # kept: the measurement coverage


def test_keys_are_kept_apart_and_a_never_blocked_row_says_so() -> None:
    cells = [*_cells({14: "blocked"}), *_cells({12: "blocked"}, probe_asn="AS64502"),
             *_cells({12: "ok", 13: "impaired"}, domain="other.example")]  # fmt: skip
    found = blocked_days(cells)
    assert found[("PK", "AS64501", "news.example")].first == dt.date(2026, 11, 14)
    assert ("PK", "AS64501", "other.example") not in found
    stale = {"blocked_since": "2026-11-01", "last_blocked": "2026-11-02", "blocked_days": 2}
    rows = parse_summary([_summary(domain="other.example", state="impaired", **stale)])
    (row,) = with_blocked_days(rows, cells)
    assert (row.blocked_since, row.last_blocked, row.blocked_days) == (None, None, 0)
    # without any cell of its own, a row keeps what it carries (read from a file, say)
    (kept,) = with_blocked_days(rows, _cells({14: "blocked"}))
    assert kept.blocked_since == dt.date(2026, 11, 1)


def test_span_over_rows() -> None:
    rows = with_blocked_days(
        parse_summary([_summary(), _summary(probe_asn="AS64502"), _summary(probe_asn="AS64503")]),
        [*_cells({17: "blocked", 18: "blocked"}), *_cells({16: "ok", 19: "blocked"}, probe_asn="AS64502")],
    )
    assert blocked_span(rows) == (dt.date(2026, 11, 17), dt.date(2026, 11, 19))
    assert blocked_span(rows[2:]) is None


@pytest.mark.parametrize(
    "extra",
    [{"blocked_since": "2026-11-14"}, {"blocked_since": "2026-11-14", "last_blocked": "2026-11-12",
      "blocked_days": 1}, {"blocked_days": 3}, {"blocked_since": "2026-11-14", "last_blocked": "2026-11-15",
      "blocked_days": 3}],
)  # fmt: skip
def test_blocked_days_go_together(extra: dict[str, Any]) -> None:
    with pytest.raises(UserError) as err:
        parse_summary([_summary(**extra)])
    assert err.value.where == "summary[0]" and "blocked" in err.value.what
