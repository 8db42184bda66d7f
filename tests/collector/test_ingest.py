"""Group commit and back-pressure."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson

from collector.conftest import collector
from collector.test_app import web
from reachwatch.collector.config import Settings


async def test_overload_is_503_with_retry_after(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    ms = web(real_measurements)
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0, max_pending=3)) as (app, http):
        store = app.state.store
        release = asyncio.Event()
        original = store.insert

        async def slow_insert(rows):
            await release.wait()
            await original(rows)

        store.insert = slow_insert
        first = asyncio.create_task(
            http.post("/api/v1/measurements", content=b"\n".join(orjson.dumps(m) for m in ms[:3]))
        )
        await asyncio.sleep(0.05)
        busy = await http.post("/api/v1/measurements", content=orjson.dumps(ms[3]))
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        release.set()
        assert (await first).status_code == 200
        await store.settle()  # acknowledged rows in the journal count as pending until stored
        assert (await http.post("/api/v1/measurements", content=orjson.dumps(ms[3]))).status_code == 200


async def test_concurrent_requests_share_commits(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    ms = web(real_measurements)
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (app, http):
        store = app.state.store
        commits = []
        original = store.insert

        async def counting(rows):
            commits.append(len(rows))
            await original(rows)

        store.insert = counting
        answers = await asyncio.gather(
            *(http.post("/api/v1/measurements", content=orjson.dumps(m)) for m in ms)
        )
        assert all(a.status_code == 200 for a in answers)
        assert sum(commits) == len(ms) and len(commits) < len(ms)


async def test_store_failure_is_503_not_500(tmp_path: Path, real_measurements: list[dict[str, Any]]) -> None:
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (app, http):

        async def broken(rows):
            raise OSError("disk full")

        app.state.store.insert = broken
        r = await http.post("/api/v1/measurements", content=orjson.dumps(web(real_measurements)[0]))
        assert r.status_code == 503 and "retry-after" in r.headers


async def test_a_batch_larger_than_max_pending_is_413(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    """It was a 503 with Retry-After, though it could never be admitted: a client that retries
    (the outbox) resent it until it gave up. Through the batch workers too (32 lines or more)."""
    sample = web(real_measurements)[0]
    lines = [orjson.dumps({**sample, "input": f"https://site{i}.example/"}) for i in range(40)]
    for workers in (0, 1):
        settings = Settings(
            store=str(tmp_path / f"m{workers}.duckdb"), rate=0, max_pending=30, ingest_workers=workers
        )
        async with collector(settings) as (_, http):
            r = await http.post("/api/v1/measurements", content=b"\n".join(lines))
            assert r.status_code == 413 and "at most 30 lines per batch" in r.json()["error"], r.text
            assert (await http.get("/api/v1/measurements")).json()["metadata"]["count"] == 0
            r = await http.post("/api/v1/measurements", content=b"\n".join(lines[:30]))
            assert r.status_code == 200, r.text


async def test_a_small_group_goes_once_as_many_requests_wait_as_the_last_group_had(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    """The commit delay lets the posts in flight join a group: once as many requests are queued
    as the last group had, the group goes without waiting out the rest of it."""
    ms = web(real_measurements)
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (app, http):
        ingestor = app.state.ingestor
        ingestor.commit_delay = 0.2

        async def wave(part: list[dict[str, Any]]) -> None:
            answers = await asyncio.gather(
                *(http.post("/api/v1/measurements", content=orjson.dumps(m)) for m in part)
            )
            assert all(a.status_code == 200 for a in answers)

        await wave(ms[:3])  # no group before it: the whole delay, all three together
        assert ingestor._last_requests == 3
        ingestor.commit_delay = 60.0  # longer than this test waits
        await asyncio.wait_for(wave(ms[3:6]), timeout=20)
        assert ingestor._last_requests == 3
