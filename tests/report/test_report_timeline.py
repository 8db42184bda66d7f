from __future__ import annotations

import datetime as dt

from reachwatch.report.model import Period, parse_cells, parse_events
from reachwatch.report.timeline import build_timeline

PERIOD = Period(start=dt.date(2018, 7, 1), end=dt.date(2018, 7, 30))


def _series(sample, asn: str, domain: str = "awamiworkersparty.org"):
    return [c for c in parse_cells(sample[1]) if c.probe_asn == asn and c.domain == domain]


def test_insufficient_days_are_hatched_never_zero_bars(sample) -> None:
    cells = _series(sample, "AS64504")
    insufficient = {c.day for c in cells if c.state == "insufficient"}
    assert len(insufficient) >= 4
    t = build_timeline("k", "Sindh Net", "AS64504", cells, PERIOD)
    assert len(t.bars) == 30 - len(insufficient)
    gaps = [g for g in t.gaps if g.kind == "insufficient"]
    assert gaps and sum(round(g.w / (t.plot_w / 30)) for g in gaps) == len(insufficient)
    assert all(g.label == "insufficient" for g in gaps)
    assert [d.state for d in t.strip].count("insufficient") == len(insufficient)


def test_days_without_data_are_empty_and_labelled(sample) -> None:
    t = build_timeline("k", "Khyber Wireless", "AS64505", _series(sample, "AS64505"), PERIOD)
    nodata = [g for g in t.gaps if g.kind == "nodata"]
    assert len(nodata) == 1 and nodata[0].label == "no data" and "10 Jul – 13 Jul" in nodata[0].tip
    assert [d.state for d in t.strip].count(None) == 4
    assert len(t.bars) == 26


def test_events_marked_and_labels_do_not_collide(sample) -> None:
    events = parse_events([*sample[2], {"date": "2018-07-26", "label": "Results announced"}])
    t = build_timeline("k", "x", "y", _series(sample, "AS64501"), PERIOD, events)
    assert [m.label for m in t.marks] == ["Leader's return", "General election", "Results announced"]
    assert t.marks[0].w > 0 and t.marks[1].w == 0
    assert t.marks[1].row != t.marks[2].row  # one day apart: the second label goes to the other row


def test_bars_and_intervals_follow_the_share(sample) -> None:
    cells = _series(sample, "AS64503")
    t = build_timeline("k", "x", "y", cells, PERIOD)
    bottom = t.top + t.plot_h
    for bar, cell in zip(t.bars, sorted(cells, key=lambda c: c.day), strict=True):
        assert abs(bar.h - cell.blocked_share * t.plot_h) < 1e-6
        assert bar.whisker_top <= bar.y + 1e-6 <= bar.whisker_bottom + 1e-6 <= bottom + 1e-6
