from __future__ import annotations

import pytest

from reachwatch.errors import UserError
from reachwatch.report.model import Cell, Period, parse_cells, parse_period, parse_summary


def test_sample_validates(sample) -> None:
    summary, cells, _ = sample
    assert len(parse_summary(summary)) == 18
    parsed = parse_cells(cells)
    assert {c.state for c in parsed} >= {
        "blocked",
        "likely_blocked",
        "impaired",
        "down",
        "ok",
        "insufficient",
    }
    assert Period.covering(parsed) == Period.model_validate({"start": "2018-07-01", "end": "2018-07-30"})


def test_aggregate_key_names_are_accepted(sample) -> None:
    row = dict(sample[1][0])
    row["blocked_low"], row["blocked_high"], row["dominant_technique"] = (
        row.pop("ci_low"),
        row.pop("ci_high"),
        "dns-hijack",
    )
    row.pop("technique")
    cell = parse_cells([row])[0]
    assert isinstance(cell, Cell) and cell.technique == "dns-hijack" and cell.ci_low <= cell.ci_high


@pytest.mark.parametrize(
    ("change", "field"),
    [({"state": "censored"}, "state"), ({"probe_asn": "64501"}, "probe_asn"), ({"blocked_share": 1.5}, "blocked_share"),
     ({"day": "July 1"}, "day"), ({"ci_low": 0.9, "ci_high": 0.1}, "record")],
)  # fmt: skip
def test_bad_cells_name_record_and_field(sample, change, field) -> None:
    rows = [sample[1][0], {**sample[1][1], **change}]
    with pytest.raises(UserError) as err:
        parse_cells(rows)
    assert err.value.where == "cells[1]"
    assert field in err.value.what or field == "record"


def test_period_must_be_ordered() -> None:
    with pytest.raises(UserError, match="period"):
        parse_period(("2018-07-30", "2018-07-01"))
    assert len(parse_period(("2018-07-01", "2018-07-30")).days()) == 30
