"""The published report says since when each network blocked, from a real store (DuckDB)."""

from __future__ import annotations

import csv
import html
import json
import re
import sys
from pathlib import Path

import pytest

from reachwatch.report.from_store import report_from_store
from reachwatch.store.query import Filters

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from store.rows import fill, since_rows


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("since")
    fill(str(base / "m.duckdb"), since_rows())
    report_from_store(str(base / "m.duckdb"), Filters(), base / "r", title="November 2026", pdf=False)
    return base / "r"


def table_row(page: str, domain: str, asn: str) -> str:
    """The HTML of ``asn``'s row in the per-network table of ``domain`` (report or dashboard)."""
    table = next(t for t in page.split("<table>") if re.search(rf"<caption>(<a [^>]*>)?{domain}<", t))
    return next(r for r in table.split("<tr") if f">{asn}<" in r)


def test_table_shows_blocked_since_and_keeps_the_coverage(out: Path) -> None:
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<th>Blocked since</th><th>Last blocked</th><th>Measured</th>" in page
    late = table_row(page, "blocked.example", "AS64501")
    assert '"when blocked-since">14 Nov 2026<' in late and "6 days blocked" in late
    assert '"when measured">10–19 Nov 2026<' in late
    never = table_row(page, "blocked.example", "AS64503")
    assert '"when blocked-since">—<' in never and '"when last-blocked">—<' in never


def test_exports_carry_blocked_days_beside_first_and_last_seen(out: Path) -> None:
    rows = {(r["domain"], r["probe_asn"]): r
            for r in csv.DictReader((out / "isp_summary.csv").open(encoding="utf-8"))}  # fmt: skip
    late = rows[("blocked.example", "AS64501")]
    assert (late["blocked_since"], late["last_blocked"], late["blocked_days"]) == (
        "2026-11-14",
        "2026-11-19",
        "6",
    )
    assert late["first_seen"].startswith("2026-11-10") and late["state"] == "blocked"
    assert (
        rows[("blocked.example", "AS64503")]["blocked_since"],
        rows[("blocked.example", "AS64503")]["blocked_days"],
    ) == ("", "0")
    doc = json.loads((out / "isp_summary.json").read_text(encoding="utf-8"))
    news = [r for r in doc["rows"] if r["domain"] == "news.example"]
    assert [(r["blocked_since"], r["last_blocked"]) for r in news] == [("2026-11-17", "2026-11-19")] * 3 + [
        (None, None)
    ]


def report_findings(page: str) -> list[str]:
    section = page.split('<section class="finding"', 1)[1].split("</section>", 1)[0]
    return [html.unescape(p) for p in re.findall(r"<p>(.*?)</p>", section)]


def test_finding_dates_are_the_blocked_days(out: Path) -> None:
    found = report_findings((out / "report.html").read_text(encoding="utf-8"))
    assert found[0] == (
        "news.example was blocked by 3 of 4 networks measured in Pakistan between 17 and 19 November "
        "2026, by DNS hijacking."
    )
