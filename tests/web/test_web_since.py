"""The dashboard says since when a network blocked, and words a finding as the report does.

An outside study (session 17): the report said a news site was blocked "between 17 and 19
November", the dashboard "between 10 and 19" (its first measurement), and both tables showed the
first measurement beside "blocked" for networks that blocked from the 14th.
"""

from __future__ import annotations

import html
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from reachwatch.collector.app import create_app
from reachwatch.collector.config import Settings
from reachwatch.report.from_store import daily_records, report_from_store, summary_records
from reachwatch.report.model import parse_cells, parse_summary
from reachwatch.store.query import Filters
from reachwatch.store.readers import open_reader
from reachwatch.web import MemorySource, mount

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from store.rows import fill, since_rows

NEWS = (
    "news.example was blocked by 3 of 4 networks measured in Pakistan between 17 and 19 November 2026, "
    "by DNS hijacking."
)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("since") / "m.duckdb")
    fill(path, since_rows())
    return path


def from_store(db: str, path: str) -> str:
    """A page served by the collector over its store (``StoreSource``)."""
    with TestClient(create_app(Settings(store=db, rate=0))) as client:
        r = client.get("/dashboard" + path)
    assert r.status_code == 200, r.text
    return r.text


def from_memory(db: str, path: str) -> str:
    """The same page over a ``MemorySource`` holding the store's summary rows and daily cells."""
    reader = open_reader(db)
    try:
        summary, cells = summary_records(reader, Filters()), daily_records(reader, Filters())
    finally:
        reader.close()
    app = Starlette(routes=[mount(MemorySource(parse_summary(summary), parse_cells(cells)), "/dashboard")])
    r = TestClient(app).get("/dashboard" + path)
    assert r.status_code == 200, r.text
    return r.text


SOURCES = pytest.mark.parametrize("page", [from_store, from_memory], ids=["store", "memory"])
Page = Callable[[str, str], str]


def table_row(page: str, domain: str, asn: str) -> str:
    table = next(t for t in page.split("<table>") if re.search(rf"<caption>(<a [^>]*>)?{domain}<", t))
    return next(r for r in table.split("<tr") if f">{asn}<" in r)


def dashboard_findings(page: str) -> list[str]:
    return [html.unescape(s) for s in re.findall(r"<p><b>(.*?)</b></p>", page)]


def report_findings(page: str) -> list[str]:
    section = page.split('<section class="finding"', 1)[1].split("</section>", 1)[0]
    return [html.unescape(s) for s in re.findall(r"<p>(.*?)</p>", section)]


@SOURCES
def test_country_table_shows_blocked_since(db: str, page: Page) -> None:
    text = page(db, "/country/PK")
    assert "<th>Blocked since</th><th>Last blocked</th><th>Measured</th>" in text
    late = table_row(text, "blocked.example", "AS64501")
    assert '"when blocked-since">14 Nov 2026<' in late and '"when measured">10–19 Nov 2026<' in late
    assert '"when blocked-since">—<' in table_row(text, "news.example", "AS64504")


@SOURCES
def test_blocked_days_follow_the_period_shown(db: str, page: Page) -> None:
    text = page(db, "/country/PK?since=2026-11-16&until=2026-11-19")
    # blocked from before the window: its first day is no start (a doubt of an outside check)
    assert '"when blocked-since">on or before 16 Nov 2026<' in table_row(text, "blocked.example", "AS64502")
    assert '"when blocked-since">17 Nov 2026<' in table_row(text, "news.example", "AS64501")


@SOURCES
def test_report_and_dashboard_say_the_same(db: str, page: Page, tmp_path: Path) -> None:
    report = report_from_store(db, Filters(), tmp_path, title="November 2026", pdf=False)
    said = report_findings(report.html.read_text(encoding="utf-8"))
    assert said[0] == NEWS
    assert dashboard_findings(page(db, "/country/PK")) == said
