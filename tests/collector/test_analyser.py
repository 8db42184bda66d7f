"""Verdicts after the acknowledgement: rows are stored unanalysed, then the analyser fills them in."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import orjson

from collector.conftest import collector
from collector.test_app import web
from reachwatch.collector import analysis
from reachwatch.collector.analyser import Analyser, analyse_raw
from reachwatch.collector.attribution import Network
from reachwatch.collector.config import Settings
from reachwatch.collector.ingest import Ingestor
from reachwatch.store import open_store
from reachwatch.store.compression import compress, decompress
from reachwatch.store.schema import IDENTITY
from store.test_store import row


async def test_acknowledged_before_analysed_then_analysed(
    store_location: str, real_measurements: list[dict[str, Any]]
) -> None:
    ms = web(real_measurements)
    async with collector(Settings(store=store_location, rate=0)) as (app, http):
        store = app.state.store
        release = asyncio.Event()
        original = store.update_analysis

        async def held(rows):
            await release.wait()
            await original(rows)

        store.update_analysis = held
        r = await http.post("/api/v1/measurements", content=b"\n".join(orjson.dumps(m) for m in ms))
        assert r.status_code == 200
        pending = (await http.get("/api/v1/measurements", params={"limit": 1000})).json()["results"]
        assert len(pending) == len(ms)
        for p in pending:
            assert p["analysed"] is False and p["blocking"] is None and p["accessible"] is None
            assert p["failure"] is True and p["anomaly"] is False  # no verdict yet: never counted ok
        total = (await http.get("/api/v1/aggregation")).json()["result"]
        assert total["ok_count"] == 0 and total["failure_count"] == len(ms)
        release.set()
        await app.state.ingestor.settled()
        done = (await http.get("/api/v1/measurements", params={"limit": 1000})).json()["results"]
        assert all(d["analysed"] for d in done)
        for d in done:
            stored = (await http.get(d["measurement_url"])).json()
            v = analysis.verdict(stored)
            assert (d["blocking"], d["accessible"], d["x_rule"], d["anomaly"], d["failure"]) == (
                v.blocking,
                v.accessible,
                v.x_rule,
                v.anomaly,
                v.failure,
            )


async def test_rows_left_unanalysed_are_analysed_on_start(
    store_location: str, real_measurements: list[dict[str, Any]]
) -> None:
    """What a kill -9 leaves between the commit and the analysis is picked up by the next run."""
    db = store_location
    ms = web(real_measurements)[:6]
    store = open_store(db)
    await store.open()
    await store.insert(
        [
            row(i, raw=compress(orjson.dumps(m)), analysed=False, blocking=None, failure=True)
            for i, m in enumerate(ms)
        ]
    )
    await store.close()
    async with collector(Settings(store=db, rate=0)) as (app, http):
        await app.state.ingestor.settled()
        rows = (await http.get("/api/v1/measurements", params={"limit": 100})).json()["results"]
        assert len(rows) == len(ms) and all(r["analysed"] for r in rows)
        assert [r["blocking"] for r in rows] != [None] * len(ms)


def test_inline_analysis_for_stores_without_a_backlog(real_measurements: list[dict[str, Any]]) -> None:
    m = web(real_measurements)[0]
    ingestor = Ingestor(object(), None, b"k" * 32, identity=IDENTITY, background_analysis=False)  # type: ignore[arg-type]
    r = ingestor.prepare(dict(m), submitter="203.0.113.9", network=Network())
    v = analysis.verdict(orjson.loads(decompress(r.raw)))
    assert r.analysed and (r.blocking, r.x_rule, r.failure) == (v.blocking, v.x_rule, v.failure)


def test_analyse_raw_gives_unreadable_rows_no_verdict(real_measurements: list[dict[str, Any]]) -> None:
    good = web(real_measurements)[0]
    out = analyse_raw([("a", compress(orjson.dumps(good))), ("b", b"not zstd")])
    v = analysis.verdict(good)
    assert dataclasses.astuple(out[0])[1:] == (
        v.blocking,
        v.accessible,
        v.x_technique,
        v.x_rule,
        v.anomaly,
        v.failure,
    )
    assert out[1].measurement_uid == "b" and out[1].failure and out[1].blocking is None


async def test_the_analysis_waits_while_ingest_is_busy(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    """Rows stay unanalysed while ingest reports work, and are analysed once it is quiet."""
    store = open_store(str(tmp_path / "m.duckdb"))
    await store.open()
    try:
        ms = web(real_measurements)[:4]
        await store.insert(
            [
                row(i, raw=compress(orjson.dumps(m)), analysed=False, blocking=None, failure=True)
                for i, m in enumerate(ms)
            ]
        )
        busy = True
        analyser = Analyser(
            store,  # type: ignore[arg-type]
            in_process=True,
            idle_for=lambda: 0.0 if busy else 1.0,
            max_defer=600.0,
        )
        analyser.start()
        await asyncio.sleep(0.3)
        assert len(await store.unanalysed(10)) == len(ms)  # type: ignore[attr-defined]
        busy = False
        await analyser.settled()
        assert await store.unanalysed(10) == []  # type: ignore[attr-defined]
        await analyser.stop()
    finally:
        await store.close()
