"""Single posts staged in the batch workers: each answered and stored as the request's own process
would, a refused post alone in its group refused, a dead worker's group answered 503, a cancelled
request's post stored."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson

from collector.conftest import PROBE_V4, collector
from collector.test_batch import stored
from collector.test_probe_services import POST_HEADERS, go_json, measurement, settings, submission
from reachwatch.collector.batch import BatchPool

#: how long a test waits for the collector to reach a state before failing (seconds)
WAIT = 20.0


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(int(WAIT / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the collector never reached the state waited for")


def recording_groups(pool: BatchPool) -> list[int]:
    """The sizes of the groups of posts ``pool`` is given, as they come."""
    sizes: list[int] = []
    posts = pool.posts

    async def record(body: bytes, items: list[Any]) -> Any:
        sizes.append(len(items))
        return await posts(body, items)

    pool.posts = record  # type: ignore[method-assign]
    return sizes


def posts(rid: str) -> list[tuple[str, bytes]]:
    """(route, body): good posts by both routes, the submitter's address in each (scrubbed), and bad
    ones of every kind between them."""
    out: list[tuple[str, bytes]] = []
    for i in range(12):
        m = measurement(rid, f"https://site{i}.example/")
        m["test_keys"]["client_resolver"] = PROBE_V4
        if i % 2:
            out.append(("/api/v1/submit_measurement", submission(m)))
        else:
            out.append((f"/report/{rid}", orjson.dumps({"format": "json", "content": m})))
    bad = [
        ("/api/v1/submit_measurement", b'{"format": "json", "content": "{"}'),
        ("/api/v1/submit_measurement", go_json({"format": "json", "content": "[1]"})),
        ("/api/v1/submit_measurement", submission({**measurement(rid), "report_id": "x"})),
        ("/api/v1/submit_measurement", submission({**measurement(rid), "probe_cc": "Pakistan"})),
        (f"/report/{rid}", b'{"format": "json", "content": '),
        (f"/report/{rid}", b'{"format": "yaml", "content": {}}'),
        (
            f"/report/{rid}",
            orjson.dumps({"format": "json", "content": {**measurement(rid), "test_keys": []}}),
        ),
        (f"/report/{rid}", orjson.dumps({"format": "json", "content": {**measurement(rid), "test_name": 5}})),
        (
            f"/report/{rid}",
            orjson.dumps(
                {"format": "json", "content": {**measurement(rid), "measurement_start_time": "1900-01-01"}}
            ),
        ),
    ]
    for k, b in enumerate(bad):
        out.insert(1 + 2 * k, b)
    return out


async def open_report(http: httpx.AsyncClient) -> str:
    r = await http.post("/api/v1/check-in", json={"probe_cc": "PK", "probe_asn": "AS64501"})
    rid: str = r.json()["tests"]["web_connectivity"]["report_id"]
    return rid


async def test_posts_in_the_workers_are_answered_and_stored_as_in_the_process(
    tmp_path: Path, geo_dbs: tuple[Path, Path]
) -> None:
    answers: dict[int, list[tuple[int, Any]]] = {}
    for workers in (0, 1):
        s = settings(tmp_path, geo_dbs, store=str(tmp_path / f"w{workers}.duckdb"), ingest_workers=workers)
        async with collector(s) as (app, http):
            assert (app.state.post_lane is None) == (workers == 0)
            groups = recording_groups(app.state.batch_pool) if workers else []
            rid = await open_report(http)
            sent = posts(rid)
            # all at once, so that the lane's groups hold good and bad posts together
            got = await asyncio.gather(
                *(http.post(path, content=body, headers=POST_HEADERS) for path, body in sent)
            )
            answers[workers] = [
                (r.status_code, "uid" if r.status_code == 200 else r.json()["error"]) for r in got
            ]
            if workers:
                assert sum(groups) == len(sent) and max(groups) > 1, groups
            again = await http.post(sent[0][0], content=sent[0][1], headers=POST_HEADERS)
            assert again.json() == got[0].json()  # stored once
            await app.state.ingestor.settled()
    assert answers[0] == answers[1]
    assert [a for a, _ in answers[1]].count(200) == 12
    kept = {w: stored(tmp_path / f"w{w}.duckdb") for w in (0, 1)}
    assert [_without_report(r) for r in kept[0]] == [_without_report(r) for r in kept[1]]
    assert len(kept[1]) == 12
    assert not any(PROBE_V4.encode() in v for r in kept[1] for v in r if isinstance(v, bytes))


def _without_report(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A stored row (:func:`stored`) without its report id, which each collector makes with its own
    secret: the column (the first) and in the raw measurement."""
    return tuple(orjson.loads(v) | {"report_id": None} if isinstance(v, bytes) else v for v in row[1:])


async def test_a_dead_workers_posts_are_answered_503_and_stored_once_when_sent_again(tmp_path: Path) -> None:
    async with collector(settings(tmp_path, ingest_workers=1)) as (app, http):
        pool: BatchPool = app.state.batch_pool
        rid = await open_report(http)
        bodies = [
            orjson.dumps({"format": "json", "content": measurement(rid, f"https://d{i}.example/")})
            for i in range(5)
        ]
        (worker,) = pool.pids
        os.kill(worker, signal.SIGSTOP)
        sending = [asyncio.create_task(http.post(f"/report/{rid}", content=b)) for b in bodies]
        await until(lambda: pool.lines > 0)
        os.kill(worker, signal.SIGKILL)
        got = await asyncio.gather(*sending)
        assert {r.status_code for r in got} <= {200, 503} and any(r.status_code == 503 for r in got)
        for r in got:
            if r.status_code == 503:
                assert r.headers["Retry-After"] and "retry" in r.json()["error"]
        resent = [await http.post(f"/report/{rid}", content=b) for b in bodies]
        assert [r.status_code for r in resent] == [200] * 5
        assert pool.pids != [worker]
        assert (await http.get("/api/v1/measurements")).json()["metadata"]["count"] == 5


async def test_a_cancelled_requests_post_is_stored_all_the_same(tmp_path: Path) -> None:
    """As a post queued for the commit: its request gone, its row still goes in (and a resend finds it)."""
    async with collector(settings(tmp_path, ingest_workers=1)) as (app, http):
        pool: BatchPool = app.state.batch_pool
        rid = await open_report(http)
        body = orjson.dumps({"format": "json", "content": measurement(rid)})
        (worker,) = pool.pids
        os.kill(worker, signal.SIGSTOP)
        try:
            sending = asyncio.create_task(http.post(f"/report/{rid}", content=body))
            await until(lambda: pool.lines > 0)
            sending.cancel()
        finally:
            os.kill(worker, signal.SIGCONT)
        await until(lambda: pool.lines == 0 and not app.state.ingestor._pending)
        listed = (await http.get("/api/v1/measurements")).json()
        assert listed["metadata"]["count"] == 1
        again = await http.post(f"/report/{rid}", content=body)
        assert again.json()["measurement_uid"] == listed["results"][0]["measurement_uid"]


async def test_posts_do_not_wait_behind_busy_or_stopped_workers(tmp_path: Path) -> None:
    """One worker held by a batch, the other stopped under a group: the posts that come meanwhile
    are staged in the collector's process and answered, not held until the call's timeout."""
    async with collector(settings(tmp_path, ingest_workers=2)) as (app, http):
        pool: BatchPool = app.state.batch_pool
        rid = await open_report(http)

        def post(i: int) -> Any:
            content = measurement(rid, f"https://w{i}.example/")
            return http.post(f"/report/{rid}", content=orjson.dumps({"format": "json", "content": content}))

        held = await pool._idle.get()  # as a batch would hold it
        stopped = pool._idle._queue[0].process.pid  # type: ignore[attr-defined]
        os.kill(stopped, signal.SIGSTOP)
        try:
            first = asyncio.create_task(post(0))
            await until(lambda: pool.lines > 0)  # its group is in the stopped worker
            later = await asyncio.gather(*(post(i) for i in range(1, 6)))
            assert [r.status_code for r in later] == [200] * 5
            assert not first.done()
        finally:
            os.kill(stopped, signal.SIGCONT)
            pool._idle.put_nowait(held)
        assert (await first).status_code == 200
        assert (await http.get("/api/v1/measurements")).json()["metadata"]["count"] == 6
