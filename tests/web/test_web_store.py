"""The dashboard served by the collector over a real DuckDB file (TestClient, then real Chromium)."""

from __future__ import annotations

import dataclasses
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn
from starlette.testclient import TestClient

from reachwatch.collector.app import create_app
from reachwatch.collector.config import Settings
from reachwatch.report.chromium import find_chromium
from reachwatch.store.compression import compress

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from store.rows import fill, mixed_rows, row


@pytest.fixture()
def db(tmp_path: Path, hostile_raw: dict[str, Any], hostile_uid: str) -> str:
    path = str(tmp_path / "served.duckdb")
    hostile = dataclasses.replace(
        row(9999, domain="awamiworkersparty.org", blocking="http-diff", accessible=False,
            technique="http-blockpage", confirmed=True),
        measurement_uid=hostile_uid,
        raw=compress(orjson.dumps(hostile_raw)),
    )  # fmt: skip
    fill(path, [*mixed_rows(), hostile])
    return path


def test_collector_serves_the_dashboard_from_its_store(db: str, hostile_uid: str) -> None:
    with TestClient(create_app(Settings(store=db, rate=0))) as client:
        home = client.get("/dashboard/")
        assert home.status_code == 200 and "default-src 'none'" in home.headers["content-security-policy"]
        assert "PK" in home.text and "IR" in home.text
        country = client.get("/dashboard/country/PK")
        assert country.status_code == 200 and "b.org" in country.text and "AS64501" in country.text
        assert client.get("/dashboard/domain/h.org?cc=PK").status_code == 200
        assert client.get("/dashboard/asn/AS64502").status_code == 200
        assert client.get("/dashboard/country/PK?since=2018-07-26&until=2018-07-26").status_code == 200
        assert client.get("/dashboard/country/FR").status_code == 404
        assert client.get("/dashboard/?since=yesterday").status_code == 400
        page = client.get(f"/dashboard/measurement/{hostile_uid}")
        assert page.status_code == 200
        assert "<script>window.__pwned" not in page.text and "&lt;script&gt;window.__pwned" in page.text
        assert client.get("/dashboard/measurement/nope").status_code == 404
        # the API is untouched
        api = client.get("/api/v1/measurements", params={"probe_cc": "IR"})
        assert api.status_code == 200


@pytest.mark.browser
@pytest.mark.skipif(find_chromium() is None, reason="needs Chromium at /usr/bin/chromium")
def test_served_hostile_measurement_runs_nothing(db: str, hostile_uid: str) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(Settings(store=db, rate=0)), host="127.0.0.1", port=port,
                                        log_level="warning"))  # fmt: skip
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}/dashboard"
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=find_chromium(), args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page()
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            for path in ("/", "/country/PK", f"/measurement/{hostile_uid}"):
                page.goto(base + path, wait_until="load")
                page.wait_for_timeout(200)
                assert page.evaluate("window.__pwned === undefined")
                assert page.query_selector_all("script, iframe, #injected") == []
            assert [u for u in requests if not u.startswith(base)] == []
            browser.close()
    finally:
        srv.should_exit = True
        thread.join(5)


def test_dashboard_unknown_measurement_is_404_not_500(db: str) -> None:
    with TestClient(create_app(Settings(store=db, rate=0))) as client:
        assert client.get("/dashboard/measurement/" + "x" * 300).status_code == 400
