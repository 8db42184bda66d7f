"""The built report in real headless Chromium, with the network blocked: it loads nothing, and prints."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reachwatch.report import build
from reachwatch.report.chromium import find_chromium, screenshot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        find_chromium() is None, reason="needs Chromium at /usr/bin/chromium (apt-get install chromium)"
    ),
]


@pytest.fixture(scope="module")
def report(sample, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("report")
    return build(*sample, out, title="Opposition party website blocked before the 2018 election")


def test_pdf_is_printed_on_several_pages(report) -> None:
    data = report.pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    assert len(re.findall(rb"/Type\s*/Page[^s]", data)) >= 3


def test_report_loads_nothing_with_network_blocked(report) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=find_chromium(), args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        requested: list[str] = []

        def block(route) -> None:
            requested.append(route.request.url)
            if route.request.url == report.html.resolve().as_uri():
                route.continue_()
            else:
                route.abort()

        page.route("**/*", block)
        page.goto(report.html.resolve().as_uri(), wait_until="load")
        page.wait_for_timeout(300)
        assert requested == [report.html.resolve().as_uri()]
        assert page.locator("svg.timeline").count() == 18
        assert page.locator("svg.timeline .gap-nodata").count() == 3  # AS64505, once per domain
        assert page.locator("svg.timeline .gap-insufficient").count() >= 1
        assert page.locator("svg.timeline .event").count() == 36  # two events on every timeline
        # the patterns resolve (a bar's fill is a pattern from the defs, not "none")
        assert page.evaluate("getComputedStyle(document.querySelector('.day-blocked rect')).fill").startswith(
            "url("
        )
        browser.close()


def test_screenshot(report, tmp_path: Path) -> None:
    png = screenshot(report.html, tmp_path / "report.png", 1200, 1600)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
