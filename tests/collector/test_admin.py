from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from analyze.test_work import CONTROL_TIMED_OUT, FPS, URL, vb
from collector.conftest import MINIMAL, collector
from collector.test_app import web
from reachwatch.analyze import analyze_store
from reachwatch.collector import admin
from reachwatch.collector.config import Settings
from reachwatch.store.clickhouse import ClickHouseStore
from reachwatch.store.duckdb import DuckDBStore

AUTH = {"authorization": "Bearer s3cret"}


async def test_admin_needs_the_token(store_location: str, real_measurements: list[dict[str, Any]]) -> None:
    ms = web(real_measurements)[:4]
    async with collector(Settings(store=store_location, rate=0, admin_token="s3cret")) as (app, http):
        uids = (
            await http.post("/api/v1/measurements", content=b"\n".join(orjson.dumps(m) for m in ms))
        ).json()["measurement_uids"]
        assert (await http.delete(f"/api/v1/measurement/{uids[0]}")).status_code == 401
        wrong = await http.delete(f"/api/v1/measurement/{uids[0]}", headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert (await http.post("/api/v1/admin/reanalyse")).status_code == 401
        assert (await http.delete(f"/api/v1/measurement/{uids[0]}", headers=AUTH)).status_code == 200
        assert (await http.get(f"/api/v1/measurement/{uids[0]}")).status_code == 404
        assert (await http.delete(f"/api/v1/measurement/{uids[0]}", headers=AUTH)).status_code == 404
        await app.state.ingestor.settled()  # verdicts come after the acknowledgement
        before = (await http.get("/api/v1/measurements")).json()["results"]
        r = await http.post("/api/v1/admin/reanalyse", headers=AUTH, params={"wait": "true"})
        assert r.status_code == 200 and r.json()["reanalysed"] == len(ms) - 1
        after = (await http.get("/api/v1/measurements")).json()["results"]
        assert [(x["measurement_uid"], x["blocking"], x["x_rule"]) for x in before] == [
            (x["measurement_uid"], x["blocking"], x["x_rule"]) for x in after
        ]


async def test_admin_disabled_without_token(tmp_path) -> None:
    async with collector(Settings(store=str(tmp_path / "m.duckdb"))) as (_, http):
        assert (await http.post("/api/v1/admin/reanalyse", headers=AUTH)).status_code == 403


async def test_a_reanalysis_clears_fingerprint_findings_for_analyze_to_make_again(
    store_location: str,
) -> None:
    """The rules' re-analysis left a row that a fingerprint had decided (``fingerprint.blockpage``)
    confirmed but a failure and no anomaly, and ``reachwatch analyze`` then skipped it for good
    (its record said the row was current). Now the finding goes with the verdict, and analyze
    makes it again."""
    m = {**MINIMAL, **vb.single(URL, {"body": vb.BLOCKPAGE, "code": 403}, CONTROL_TIMED_OUT)}
    settings = Settings(store=store_location, rate=0, admin_token="s3cret")

    async def row(http: httpx.AsyncClient) -> tuple[Any, ...]:
        [r] = (await http.get("/api/v1/measurements")).json()["results"]
        return r["x_rule"], r["anomaly"], r["confirmed"], r["failure"]

    async with collector(settings) as (app, http):
        assert (await http.post("/api/v1/measurements", content=orjson.dumps(m))).status_code == 200
        await app.state.ingestor.settled()
        assert await row(http) == ("http.control-failed", False, False, True)
    assert analyze_store(store_location, fingerprints=FPS, workers=1).measurements == 1
    async with collector(settings) as (_, http):
        assert await row(http) == ("fingerprint.blockpage", True, True, False)
        waited = await http.post("/api/v1/admin/reanalyse", headers=AUTH, params={"wait": "true"})
        assert waited.json() == {"reanalysed": 1}
        assert await row(http) == ("http.control-failed", False, False, True)
    assert analyze_store(store_location, fingerprints=FPS, workers=1).measurements == 1
    async with collector(settings) as (_, http):
        assert await row(http) == ("fingerprint.blockpage", True, True, False)


async def test_a_reanalysis_runs_in_the_background_and_says_how_far_it_is(
    store_location: str, real_measurements: list[dict[str, Any]]
) -> None:
    """It took ~2 minutes at 180,000 rows (an outside soak): one request that long meets a proxy's
    timeout, so the POST starts it (202) and the GET follows it."""
    ms = web(real_measurements)[:6]
    async with collector(Settings(store=store_location, rate=0, admin_token="s3cret")) as (app, http):
        assert (await http.get("/api/v1/admin/reanalyse")).status_code == 401
        assert (await http.get("/api/v1/admin/reanalyse", headers=AUTH)).json()["status"] == "idle"
        await http.post("/api/v1/measurements", content=b"\n".join(orjson.dumps(m) for m in ms))
        await app.state.ingestor.settled()
        started = await http.post("/api/v1/admin/reanalyse", headers=AUTH)
        assert started.status_code == 202 and started.json()["status"] == "running"
        assert started.json()["started"] and started.json()["finished"] is None
        again = await http.post("/api/v1/admin/reanalyse", headers=AUTH)
        assert again.status_code == 409 and again.json()["status"] == "running"
        await app.state.reanalysis.task
        done = (await http.get("/api/v1/admin/reanalyse", headers=AUTH)).json()
        assert done["status"] == "done" and done["reanalysed"] == len(ms) and done["finished"]


async def test_a_stop_interrupts_a_reanalysis_and_analyze_makes_its_findings_again(tmp_path) -> None:
    """A collector stopped half-way through: the rows done keep their new verdicts, and analyze's
    record is already gone, so that its next run makes every finding again."""
    settings = Settings(store=str(tmp_path / "m.duckdb"), rate=0, admin_token="s3cret")
    async with collector(settings) as (app, http):
        await http.post("/api/v1/measurements", content=orjson.dumps(MINIMAL))
        await app.state.ingestor.settled()
        job = app.state.reanalysis
        started = asyncio.Event()

        async def hang(size: int) -> AsyncIterator[list[tuple[str, bytes]]]:
            started.set()
            await asyncio.Event().wait()  # until cancelled by the stop
            yield []

        app.state.store.raw_batches = hang
        assert (await http.post("/api/v1/admin/reanalyse", headers=AUTH)).status_code == 202
        await started.wait()
    assert job.status == "interrupted" and job.finished


async def test_a_reanalysis_in_small_batches_judges_every_row_once(
    store_location: str, real_measurements: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next batch is read and the last verdicts written while one is judged, as many at once
    as the store takes best: every row is counted once, and the rows' verdicts are the
    analysis' again once it is done."""
    monkeypatch.setattr(admin, "BATCH", 2)
    monkeypatch.setattr(DuckDBStore, "update_rows", 4)
    monkeypatch.setattr(ClickHouseStore, "update_rows", 4)
    ms = web(real_measurements)[:7]
    async with collector(Settings(store=store_location, rate=0, admin_token="s3cret")) as (app, http):
        await http.post("/api/v1/measurements", content=b"\n".join(orjson.dumps(m) for m in ms))
        await app.state.ingestor.settled()
        before = (await http.get("/api/v1/measurements", params={"limit": 100})).json()["results"]
        store = app.state.store
        written: list[int] = []
        update = store.update_analysis

        async def counted(rows: Any) -> None:
            written.append(len(rows))
            await update(rows)

        monkeypatch.setattr(store, "update_analysis", counted)
        assert (await http.post("/api/v1/admin/reanalyse", headers=AUTH)).status_code == 202
        await app.state.reanalysis.task
        done = (await http.get("/api/v1/admin/reanalyse", headers=AUTH)).json()
        assert done["status"] == "done" and done["reanalysed"] == len(ms)
        assert written == [4, 3]  # batches of 2, 2 | 2, 1
        after = (await http.get("/api/v1/measurements", params={"limit": 100})).json()["results"]
        assert sorted(before, key=str) == sorted(after, key=str)


async def test_a_store_failing_half_way_through_a_reanalysis_is_its_status(
    tmp_path, real_measurements: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    """A write that fails ends it as failed, the rows written before counted, no task left behind."""
    monkeypatch.setattr(admin, "BATCH", 2)
    monkeypatch.setattr(DuckDBStore, "update_rows", 2)
    ms = web(real_measurements)[:7]
    settings = Settings(store=str(tmp_path / "m.duckdb"), rate=0, admin_token="s3cret")
    async with collector(settings) as (app, http):
        await http.post("/api/v1/measurements", content=b"\n".join(orjson.dumps(m) for m in ms))
        await app.state.ingestor.settled()
        store = app.state.store
        update = store.update_analysis
        calls = 0

        async def failing(rows: Any) -> None:
            nonlocal calls
            calls += 1
            if calls == 2:
                raise OSError("No space left on device")
            await update(rows)

        monkeypatch.setattr(store, "update_analysis", failing)
        assert (await http.post("/api/v1/admin/reanalyse", headers=AUTH)).status_code == 202
        await app.state.reanalysis.task
        done = (await http.get("/api/v1/admin/reanalyse", headers=AUTH)).json()
        assert done["status"] == "failed" and done["error"] == "storage error" and done["finished"]
        assert done["reanalysed"] == 2
    assert "No space left on device" in caplog.text
    assert "never retrieved" not in caplog.text


async def test_a_store_failing_to_read_a_reanalysis_batch_is_its_status(tmp_path, caplog: Any) -> None:
    """A read that fails while the batch before is judged ends it as failed, that batch's
    verdicts written, nothing left behind."""
    settings = Settings(store=str(tmp_path / "m.duckdb"), rate=0, admin_token="s3cret")
    async with collector(settings) as (app, http):
        await http.post("/api/v1/measurements", content=orjson.dumps(MINIMAL))
        await app.state.ingestor.settled()
        store = app.state.store
        first = [item async for batch in store.raw_batches(10) for item in batch]

        async def failing(size: int) -> AsyncIterator[list[tuple[str, bytes]]]:
            yield first
            raise OSError("I/O error reading the file")

        store.raw_batches = failing
        assert (await http.post("/api/v1/admin/reanalyse", headers=AUTH)).status_code == 202
        await app.state.reanalysis.task
        done = (await http.get("/api/v1/admin/reanalyse", headers=AUTH)).json()
        assert done["status"] == "failed" and done["reanalysed"] == 1
    assert "I/O error reading the file" in caplog.text
    assert "never retrieved" not in caplog.text
