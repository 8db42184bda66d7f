"""Verdicts after the acknowledgement: rows are stored unanalysed, then the analyser fills them in."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import multiprocessing
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from collector.conftest import collector
from collector.test_app import OPEN, web
from reachwatch.collector import analyser as analyser_module
from reachwatch.collector import analysis
from reachwatch.collector.analyser import (
    Analyser,
    AnalysisUnavailable,
    analyse_raw,
    close_pool,
    processes,
)
from reachwatch.collector.attribution import Network
from reachwatch.collector.config import Settings
from reachwatch.collector.ingest import Ingestor
from reachwatch.runtime import alive
from reachwatch.store import open_store
from reachwatch.store.compression import compress, decompress
from reachwatch.store.schema import IDENTITY, Analysis
from store.test_store import row


async def assert_judged(http: httpx.AsyncClient, rows: list[dict[str, Any]]) -> None:
    """Each listed row holds the verdict of the measurement stored under its uid."""
    for d in rows:
        v = analysis.verdict((await http.get(d["measurement_url"])).json())
        assert (d["blocking"], d["accessible"], d["x_rule"], d["anomaly"], d["failure"]) == (
            v.blocking,
            v.accessible,
            v.x_rule,
            v.anomaly,
            v.failure,
        )


async def test_acknowledged_before_analysed_then_analysed(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    """DuckDB: stored unanalysed, acknowledged, then the verdict written over the row."""
    ms = web(real_measurements)
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (app, http):
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
        await assert_judged(http, done)


async def mutations(http: httpx.AsyncClient, url: str, db: str) -> int:
    sql = f"SELECT count() FROM system.mutations WHERE database = '{db}' FORMAT TSV"
    return int((await http.post(url, content=sql.encode())).text)


@pytest.mark.clickhouse
@pytest.mark.parametrize("workers", [0, 1])
async def test_clickhouse_rows_are_judged_before_their_insert(
    clickhouse_url: str, real_measurements: list[dict[str, Any]], workers: int
) -> None:
    """ClickHouse: an update is a mutation rewriting whole parts, so no row is updated after its
    insert: each is stored with its verdict (single posts, and batches in the workers or not)."""
    db = f"judged{workers}"
    ms = web(real_measurements)
    settings = Settings(store=f"{clickhouse_url}/{db}", rate=0, ingest_workers=workers)
    async with collector(settings) as (app, http):
        assert app.state.ingestor.verdict_now
        r = await http.post("/api/v1/measurements", content=b"\n".join(orjson.dumps(m) for m in ms[2:]))
        assert r.status_code == 200
        assert (await http.post("/api/v1/measurements", content=orjson.dumps(ms[1]))).status_code == 200
        # a single post: in the batch workers too where there are some (post_lane)
        rid = (await http.post("/report", json=OPEN)).json()["report_id"]
        r = await http.post(f"/report/{rid}", json={"format": "json", "content": ms[0]})
        assert r.status_code == 200
        rows = (await http.get("/api/v1/measurements", params={"limit": 1000})).json()["results"]
        assert len(rows) == len(ms) and all(row["analysed"] for row in rows)
        await assert_judged(http, rows)
    async with httpx.AsyncClient(timeout=30) as ch:
        assert await mutations(ch, clickhouse_url, db) == 0


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


@pytest.mark.clickhouse
async def test_clickhouse_catches_up_an_older_versions_rows_in_few_mutations(
    clickhouse_url: str, real_measurements: list[dict[str, Any]]
) -> None:
    """Rows an older version stored unanalysed get their verdicts in batches of CATCH_UP_BATCH, not
    of 1,000: each write is a mutation, which rewrites the table."""
    db = "catch_up"
    ms = web(real_measurements)
    store = open_store(f"{clickhouse_url}/{db}")
    await store.open()
    rows = [
        row(i, raw=compress(orjson.dumps(ms[i % len(ms)])), analysed=False, blocking=None, failure=True)
        for i in range(analyser_module.BATCH + 200)
    ]
    await store.insert(rows)
    await store.close()
    async with collector(Settings(store=f"{clickhouse_url}/{db}", rate=0)) as (app, _):
        await app.state.ingestor.settled()
        assert await app.state.store.unanalysed(10) == []
    async with httpx.AsyncClient(timeout=30) as ch:
        assert await mutations(ch, clickhouse_url, db) == 1


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


# -- a measurement that crashes or hangs the analysis process ----------------------------------------
def crash_or_hang(items: Sequence[tuple[str, bytes]]) -> list[Analysis]:
    """The analysis process's work, but for the rows named "crash" (it dies) and "hang" (it never
    ends): what a verdict bug on one odd measurement, or the kernel's OOM killer, would do."""
    for uid, _ in items:
        if uid == "crash":
            os._exit(3)
        if uid == "hang":
            time.sleep(3600)
    return analyse_raw(items)


def always_crash(items: Sequence[tuple[str, bytes]]) -> list[Analysis]:
    os._exit(3)


def _analysis_processes() -> list[int]:
    """The PIDs of this process's children still running (not ended, nor zombies: the pool's own
    thread reaps those, and ``is_alive()`` racing it may answer True)."""
    return [p.pid for p in multiprocessing.active_children() if p.pid is not None and alive(p.pid)]


async def test_one_measurement_that_crashes_or_hangs_the_analysis_does_not_stop_the_rest(
    real_measurements: list[dict[str, Any]],
) -> None:
    """The batch is cut in halves down to the row at fault, which alone gets no verdict; the
    process that hung is killed by PID, not left behind."""
    good = [compress(orjson.dumps(m)) for m in web(real_measurements)[:3]]
    items = [("g0", good[0]), ("crash", good[0]), ("g1", good[1]), ("hang", good[1]), ("g2", good[2])]
    analyser = Analyser(object(), work=crash_or_hang, timeout=1.0, timeout_per_row=0.0)  # type: ignore[arg-type]
    try:
        out = await analyser.analyse(items)
    finally:
        close_pool(wait=5.0)
    assert [a.measurement_uid for a in out] == [uid for uid, _ in items]
    expected = analyse_raw([items[0], items[2], items[4]])
    assert [out[0], out[2], out[4]] == expected
    for a in (out[1], out[3]):
        assert a.failure and not a.anomaly and a.blocking is None  # no verdict, never counted as ok
    assert _analysis_processes() == []


def pid_or_crash(items: Sequence[tuple[str, bytes]]) -> list[Analysis]:
    """Each row's "verdict" names the process that gave it (in ``x_rule``) and its share's first row
    (in ``x_technique``); "crash" kills it."""
    if any(uid == "crash" for uid, _ in items):
        os._exit(3)
    return [Analysis(uid, None, None, items[0][0], str(os.getpid()), False, False) for uid, _ in items]


async def test_a_batch_is_shared_between_the_analysis_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A backlog is analysed on every core (one process each), in order; a row that crashes one
    process is still found by halving, and only it goes without a verdict."""
    monkeypatch.setattr(analyser_module, "CHUNK", 2)  # shares of 2 rows: few halvings to the crash
    items = [(f"r{i}", b"") for i in range(8)]
    items[6] = ("crash", b"")
    analyser = Analyser(object(), work=pid_or_crash, timeout=5.0, timeout_per_row=0.0)  # type: ignore[arg-type]
    try:
        first = await analyser.analyse(items[:4])
        out = await analyser.analyse(items)
    finally:
        close_pool(wait=5.0)
    # a share for each process; which process takes which is the pool's (one at idle priority may
    # not have started when the other is free again, on a busy machine)
    assert len({a.x_technique for a in first}) == min(2, processes())
    assert 1 <= len({a.x_rule for a in first}) <= min(2, processes())
    assert [a.measurement_uid for a in out] == [uid for uid, _ in items]
    assert [a.measurement_uid for a in out if a.x_rule is None] == ["crash"]
    assert _analysis_processes() == []


async def test_an_analysis_process_that_cannot_run_at_all_leaves_the_rows_alone(
    real_measurements: list[dict[str, Any]],
) -> None:
    """A new process that fails with nothing to analyse says the trouble is not the batch's: no row
    is given "no verdict" for it (the analyser tries again later)."""
    items = [("a", compress(orjson.dumps(web(real_measurements)[0])))]
    analyser = Analyser(object(), work=always_crash)  # type: ignore[arg-type]
    try:
        with pytest.raises(AnalysisUnavailable):
            await analyser.analyse(items)
    finally:
        close_pool(wait=5.0)
    assert _analysis_processes() == []


async def test_the_shutdown_kills_an_analysis_process_that_does_not_finish(
    real_measurements: list[dict[str, Any]],
) -> None:
    """A stopped or hung analysis process does not hold up the collector's stop: it is given
    its time, then killed by PID."""
    items = [("hang", compress(orjson.dumps(web(real_measurements)[0])))]
    analyser = Analyser(object(), work=crash_or_hang, timeout=3600.0)  # type: ignore[arg-type]
    task = asyncio.create_task(analyser.analyse(items))
    while not _analysis_processes():
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # the batch is in the process's hands
    close_pool(wait=0.2)
    assert _analysis_processes() == []
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    close_pool(wait=1.0)


def test_an_analysis_process_is_idle_priority_from_its_start() -> None:
    """Before its imports (~0.5 s of CPU, which come before the pool's initializer), not after."""
    process = analyser_module._IdleSpawnContext().Process(target=time.sleep, args=(30,))
    process.start()
    try:
        assert process.pid is not None
        assert os.sched_getscheduler(process.pid) == os.SCHED_IDLE
    finally:
        process.kill()
        process.join()


@pytest.mark.parametrize(
    ("cpu_per_look", "state", "waited"),
    [(0.0, "R", True), (1.0, "R", False), (0.0, "T", False), (0.0, "S", False)],
)
async def test_a_starved_analysis_is_waited_for_and_a_hung_one_is_not(
    monkeypatch: pytest.MonkeyPatch, cpu_per_look: float, state: str, waited: bool
) -> None:
    """Past its limit, a batch whose process wants a CPU and got little of it (idle priority on a
    busy machine) is waited for: timed out, a CI run under load gave a whole batch "no verdict".
    One that used its time on the CPU, or is stopped, or sleeps, is taken for hung."""
    looks = itertools.count()
    monkeypatch.setattr(analyser_module, "cpu_and_state", lambda pid: (next(looks) * cpu_per_look, state))

    class Pool:
        _processes = {4242: None}

    loop = asyncio.get_running_loop()
    work: asyncio.Future[list[Analysis]] = loop.create_future()
    loop.call_later(0.35, lambda: work.done() or work.set_result([]))
    if waited:
        assert await analyser_module._unless_hung(work, 0.1, Pool()) == []  # type: ignore[arg-type]
        assert next(looks) >= 3  # looked at each overrun
    else:
        with pytest.raises(TimeoutError):
            await analyser_module._unless_hung(work, 0.1, Pool())  # type: ignore[arg-type]
        assert work.cancelled()
