"""`geoip update` through its real code path, against a mock transport (no network in tests)."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path
from typing import Any

import httpx
import pytest

from reachwatch.collector import geoip
from reachwatch.collector.attribution import Attributor
from reachwatch.errors import UserError
from reachwatch.lab import mmdb


def test_urls_use_current_then_previous_month() -> None:
    assert geoip.months(dt.date(2026, 1, 3)) == ["2026-01", "2025-12"]
    assert geoip.url_for("asn", "2026-01") == "https://download.db-ip.com/free/dbip-asn-lite-2026-01.mmdb.gz"


def test_update_downloads_checks_and_renames(tmp_path: Path) -> None:
    db = mmdb.write(
        tmp_path / "src.mmdb",
        {
            "203.0.113.0/24": {
                "autonomous_system_number": 64501,
                "autonomous_system_organization": "X",
                "country": {"iso_code": "PK"},
            }
        },
    )
    payload = gzip.compress(db.read_bytes())
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if "2026-02" in str(request.url):
            return httpx.Response(404)
        return httpx.Response(200, content=payload)

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        paths = geoip.update(tmp_path / "geo", today=dt.date(2026, 2, 1), client=client)
    assert [p.name for p in paths] == ["dbip-asn-lite.mmdb", "dbip-country-lite.mmdb"]
    assert seen[1].endswith("dbip-asn-lite-2026-01.mmdb.gz")
    net = Attributor(paths[0], paths[1]).lookup("203.0.113.1")
    assert (net.asn, net.cc) == ("AS64501", "PK")

    with (
        httpx.Client(
            transport=httpx.MockTransport(lambda r: httpx.Response(200, content=gzip.compress(b"junk")))
        ) as c,
        pytest.raises(UserError),
    ):
        geoip.update(tmp_path / "geo2", client=c)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(lambda good: good[: len(good) // 2], id="cut-short"),
        pytest.param(lambda good: good[:-12] + b"\x00" * 12, id="bad-trailer"),
        pytest.param(lambda good: b"<html>sign in to the wifi</html>", id="not-gzip"),
        pytest.param(lambda good: gzip.compress(b"junk"), id="not-mmdb"),
    ],
)
def test_a_bad_download_is_a_user_error_and_leaves_no_files(tmp_path: Path, body: Any) -> None:
    """A gzip cut short was an EOFError traceback, and every failed download left its
    ``.gz.part``/``.part`` files in the directory."""
    db = mmdb.write(tmp_path / "src.mmdb", {"203.0.113.0/24": {"autonomous_system_number": 64501}})
    payload = body(gzip.compress(db.read_bytes()))
    with (
        httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, content=payload))) as c,
        pytest.raises(UserError, match=r"download of .* failed"),
    ):
        geoip.update(tmp_path / "geo", today=dt.date(2026, 2, 1), client=c)
    assert list((tmp_path / "geo").iterdir()) == []
