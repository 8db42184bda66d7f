"""Vantage points: counted as probes, never kept as addresses."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import orjson

from collector.conftest import PROBE_V4, collector
from collector.test_app import OPEN, web
from reachwatch.collector.config import Settings
from reachwatch.collector.vantage import KEY_FILE, Vantages, vantage_point

DAY = dt.datetime(2026, 11, 12, 10, tzinfo=dt.UTC)


def test_a_vantage_point_is_an_ipv4_address_or_an_ipv6_64() -> None:
    assert vantage_point("192.0.2.1") == vantage_point("::ffff:192.0.2.1") != vantage_point("192.0.2.2")
    # IPv6 privacy extensions change the interface part by the hour: one household
    assert vantage_point("2001:db8:1:2:aaaa::1") == vantage_point("2001:db8:1:2:bbbb::9")
    assert vantage_point("2001:db8:1:2::1") != vantage_point("2001:db8:1:3::1")
    assert vantage_point("fe80::1%eth0") == vantage_point("fe80::2")


def test_the_key_is_drawn_anew_each_day_and_never_the_same() -> None:
    v = Vantages()
    today = v.of("192.0.2.1", DAY)
    assert today == v.of("192.0.2.1", DAY + dt.timedelta(hours=13)) != v.of("192.0.2.2", DAY)
    assert v.of("192.0.2.1", DAY + dt.timedelta(days=1)) != today  # not linkable across days
    assert Vantages().of("192.0.2.1", DAY) != today  # another process: another key
    assert v.of("", DAY) is None


async def test_one_volunteer_running_the_test_again_is_one_probe(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    """Counted by report id, one volunteer running the test three times (three reports, as OONI
    probes open) was three probes and made the network's day "blocked" (an outside check,
    session 17). The submitter's vantage point is the probe now, on every route; its address is
    in no row."""
    m = web(real_measurements)[0]
    db = tmp_path / "m.duckdb"
    async with collector(Settings(store=str(db), rate=0), client=PROBE_V4) as (_, http):
        for n in range(3):
            rid = (await http.post("/report", json=OPEN)).json()["report_id"]
            content = dict(m, input=f"http://a{n}.example/")
            assert (
                await http.post(f"/report/{rid}", json={"format": "json", "content": content})
            ).status_code == 200
        batch = b"\n".join(
            orjson.dumps(dict(m, input=f"http://b{n}.example/", report_id=f"r{n}")) for n in range(40)
        )
        assert (await http.post("/api/v1/measurements", content=batch)).status_code == 200
        rows = (await http.get("/api/v1/measurements", params={"limit": 100})).json()["results"]
    hashes = {r["probe_id_hash"] for r in rows}
    assert len(rows) == 43 and len(hashes) == 1
    assert PROBE_V4 not in str(rows) and PROBE_V4.encode() not in db.read_bytes()


def test_the_days_key_is_kept_for_a_restart_that_day_and_replaced_the_next(tmp_path: Path) -> None:
    """Three runs of one volunteer with restarts between them were three probes (a new key each
    start), and the network's day "blocked" (an outside check, session 17)."""
    kept = tmp_path / "journal" / KEY_FILE
    first = Vantages(kept).of("192.0.2.1", DAY)
    assert Vantages(kept).of("192.0.2.1", DAY + dt.timedelta(hours=5)) == first  # restarted
    assert kept.stat().st_mode & 0o777 == 0o600 and kept.read_text().startswith("2026-11-12 ")
    later = Vantages(kept)
    assert later.of("192.0.2.1", DAY + dt.timedelta(days=1)) != first
    assert kept.read_text().startswith("2026-11-13 ")  # the day before's key is gone
    kept.write_text("not a key")
    assert Vantages(kept).of("192.0.2.1", DAY) != first  # unreadable: a new one, kept
    assert kept.read_text().startswith("2026-11-12 ")


async def test_a_collector_restarted_within_a_day_counts_a_vantage_point_once(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    m = web(real_measurements)[0]
    db = tmp_path / "m.duckdb"
    for n in range(2):
        async with collector(Settings(store=str(db), rate=0), client=PROBE_V4) as (_, http):
            r = await http.post(
                "/api/v1/measurements", content=orjson.dumps(dict(m, input=f"http://r{n}.example/"))
            )
            assert r.status_code == 200, r.text
            rows = (await http.get("/api/v1/measurements")).json()["results"]
    assert len(rows) == 2 and len({r["probe_id_hash"] for r in rows}) == 1
