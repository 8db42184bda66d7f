from __future__ import annotations

import datetime as dt

from reachwatch.report.finding import domain_finding, findings
from reachwatch.report.model import Period, parse_cells, parse_summary

PERIOD = Period(start=dt.date(2018, 7, 1), end=dt.date(2018, 7, 30))


def test_sample_finding_in_plain_words(sample) -> None:
    summary, cells = parse_summary(sample[0]), parse_cells(sample[1])
    first = findings(summary, PERIOD, cells)[0]
    assert first.startswith(
        "awamiworkersparty.org was blocked by 5 of 6 networks measured in Pakistan between "
    )
    assert "July 2018, by DNS hijacking" in first and "TLS SNI filtering" in first and "blockpage" in first


def test_insufficient_networks_are_not_counted_as_measured(sample) -> None:
    rows = [r.model_copy(update={"state": "insufficient"}) if r.probe_asn == "AS64506" else r
            for r in parse_summary(sample[0])]  # fmt: skip
    text = domain_finding("awamiworkersparty.org", "PK", rows, PERIOD)
    assert "5 of 5 networks measured" in text and "1 more network had too few measurements" in text


def test_not_blocked_and_no_data_sentences(sample) -> None:
    rows = parse_summary(sample[0])
    assert "was not blocked by any of the 6 networks" in domain_finding("dawn.com", "PK", rows, PERIOD)
    none = [r.model_copy(update={"state": "insufficient"}) for r in rows]
    assert domain_finding("dawn.com", "PK", none, PERIOD).startswith(
        "There were too few measurements of dawn.com"
    )


def test_dates_are_the_blocked_days_never_the_measurements(sample) -> None:
    """Without cells the finding dated blocking from the first to the last measurement, which a
    reader takes for "blocked since" (an outside study, session 17)."""
    summary, cells = parse_summary(sample[0]), parse_cells(sample[1])
    late = [c for c in cells if c.domain == "awamiworkersparty.org" and c.probe_asn == "AS64502"]
    # AS64502 blocks from 10 July; its first measurement is on 1 July
    assert min(c.day for c in late if c.state in ("blocked", "likely_blocked")) == dt.date(2018, 7, 10)
    only = [r for r in summary if r.probe_asn == "AS64502"]
    text = domain_finding("awamiworkersparty.org", "PK", only, PERIOD, late)
    assert "1 of 1 network measured in Pakistan between 10 and 30 July 2018, by TLS SNI filtering." in text
    # no daily result: the period as a whole, said as such, not the first and last measurement
    undated = domain_finding("awamiworkersparty.org", "PK", only, PERIOD)
    assert "over the period between 1 and 30 July 2018 taken as a whole (no daily result dates" in undated
