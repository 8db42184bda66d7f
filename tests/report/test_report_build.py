from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from reachwatch.errors import UserError
from reachwatch.report import build, render_html
from reachwatch.report.model import Period, parse_cells, parse_events, parse_summary
from reachwatch.report.selfcontained import external_references

TITLE = "Opposition party website blocked before the 2018 election"


def test_build_writes_html_and_every_table(sample, tmp_path: Path) -> None:
    summary, cells, events = sample
    paths = build(summary, cells, events, tmp_path / "out", title=TITLE, pdf=False)
    assert paths.pdf is None and paths.html.name == "report.html"
    names = sorted(p.name for p in paths.tables)
    assert names == sorted(
        f"{t}.{ext}" for t in ("isp_summary", "daily_cells", "events") for ext in ("csv", "json")
    )
    rows = list(csv.DictReader((tmp_path / "out" / "isp_summary.csv").open(encoding="utf-8")))
    assert len(rows) == 18 and rows[0]["probe_asn"] == "AS64501"
    doc = json.loads((tmp_path / "out" / "daily_cells.json").read_text(encoding="utf-8"))
    assert len(doc["rows"]) == len(cells) and doc["columns"][0] == "day"
    html = paths.html.read_text(encoding="utf-8")
    assert "was blocked by 5 of 6 networks measured in Pakistan" in html
    for section in (
        "Results by network",
        "Day by day",
        "How this was measured",
        "Limitations",
        "General election",
    ):
        assert section in html


def test_report_is_self_contained(sample) -> None:
    summary, cells, events = (
        f(x) for f, x in zip((parse_summary, parse_cells, parse_events), sample, strict=True)
    )
    html = render_html(summary, cells, events, title=TITLE, period=Period.covering(cells))
    assert external_references(html) == []
    outside_text = re.sub(r">[^<]*<", "><", html)  # attributes, tags and style only
    assert not re.search(r"https?://|//[a-z]", outside_text, re.IGNORECASE)
    assert "<script" not in html.lower()
    assert "<style>" in html and "Content-Security-Policy" in html


def test_scanner_sees_what_would_load() -> None:
    found = external_references(
        '<link rel=stylesheet href="https://x/y.css"><img src="//x/i.png"><p style="background:url(http://x)">'
        '<div onclick="f()"><style>@import "x.css"; a{background:url(#ok)}</style><a href="data.csv">ok</a>'
    )
    assert len(found) == 6 and not any("data.csv" in f or "#ok" in f for f in found)


def test_hostile_names_are_escaped_everywhere(sample, tmp_path: Path) -> None:
    summary, cells, events = sample
    evil = '<script>alert(1)</script><img src="https://evil.example/x.png">'
    summary = [{**r, "probe_network_name": evil} if r["probe_asn"] == "AS64506" else r for r in summary]
    events = [*events, {"date": "2018-07-20", "label": '=HYPERLINK("http://evil")', "description": evil}]
    paths = build(summary, cells, events, tmp_path, title=evil, finding=evil, pdf=False)
    html = paths.html.read_text(encoding="utf-8")
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert external_references(html) == []
    assert "'=HYPERLINK" in (tmp_path / "events.csv").read_text(
        encoding="utf-8"
    )  # no formula in a spreadsheet


def test_nothing_to_report_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="nothing to report"):
        build([], [], [], tmp_path, title="x", pdf=False)
