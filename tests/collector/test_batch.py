"""Big batches staged in worker processes: the same rows as in-process, line numbers, worker death."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json
import os
import pickle
import random
import select
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import httpx
import orjson
import pytest

from collector.conftest import collector
from collector.test_app import web
from collector.test_durability import batch_workers, free_port, start, wait_ready
from reachwatch.collector.attribution import Network
from reachwatch.collector.batch import CALL_TIMEOUT, POOLED_LINES
from reachwatch.collector.config import Settings
from reachwatch.collector.frames import SIZES, frame
from reachwatch.collector.prepare import stage
from reachwatch.collector.shared import Shared
from reachwatch.store.compression import decompress
from reachwatch.store.schema import IDENTITY, LEGACY_IDENTITY, META_TABLE, RowColumns

N = 3 * POOLED_LINES + 5  # cut into pieces, one per worker


def batch(real_measurements: list[dict[str, Any]], n: int = N) -> list[bytes]:
    sample = web(real_measurements)[0]
    out = []
    for i in range(n):
        m = copy.deepcopy(sample)
        m["input"] = f"https://site{i}.example/"
        out.append(orjson.dumps(m))
    return out


def stored(db: Path) -> list[tuple[Any, ...]]:
    """Every stored row, raw decompressed, but what differs between two collectors: the uid (it has
    the time received) and the hashes keyed with each collector's secret."""
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT * EXCLUDE (measurement_uid, content_hash, probe_id_hash) FROM measurements ORDER BY input"
        ).fetchall()
        names = [d[0] for d in con.description]
    raw = names.index("raw")
    return [(*r[:raw], decompress(r[raw]), *r[raw + 1 :]) for r in rows]


async def test_workers_store_what_the_collector_would(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    body = b"\n".join(batch(real_measurements))
    uids = {}
    for workers in (0, 2):
        db = tmp_path / f"w{workers}.duckdb"
        settings = Settings(store=str(db), rate=0, ingest_workers=workers)
        async with collector(settings) as (app, http):
            assert (app.state.batch_pool is None) == (workers == 0)
            r = await http.post("/api/v1/measurements", content=body)
            assert r.status_code == 200, r.text
            uids[workers] = r.json()["measurement_uids"]
            assert len(uids[workers]) == N == len(set(uids[workers]))
            again = await http.post("/api/v1/measurements", content=body)
            assert again.json()["measurement_uids"] == uids[workers]  # stored once
            for i in (0, N // 2, N - 1):
                got = (await http.get(f"/api/v1/measurement/{uids[workers][i]}")).json()
                assert got["input"] == f"https://site{i}.example/"
            await app.state.ingestor.settled()
    assert stored(tmp_path / "w0.duckdb") == stored(tmp_path / "w2.duckdb")


async def test_without_memfd_the_pieces_travel_through_the_pipe(
    tmp_path: Path, real_measurements: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A system without memfd_create (macOS): no shared memory, the frames carry the bulk."""
    monkeypatch.delattr(os, "memfd_create")
    body = b"\n".join(batch(real_measurements))
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0, ingest_workers=2)) as (app, http):
        assert [w.shared for w in app.state.batch_pool._all] == [None, None]
        r = await http.post("/api/v1/measurements", content=body)
        assert r.status_code == 200, r.text
        assert len(set(r.json()["measurement_uids"])) == N
        await app.state.ingestor.settled()
    assert len(stored(tmp_path / "m.duckdb")) == N


async def test_a_piece_bigger_than_the_shared_memory_grows_it(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    """The shared memory starts at 1 MB: a bigger piece grows it (the worker maps it anew) and the
    smaller pieces after it still go through it whole."""
    small, big = batch(real_measurements), batch(real_measurements, 600)
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0, ingest_workers=2)) as (app, http):
        sizes = [len(w.shared or b"") for w in app.state.batch_pool._all]
        assert sizes == [1 << 20, 1 << 20]
        for lines in (small, big, small[::-1]):
            r = await http.post("/api/v1/measurements", content=b"\n".join(lines))
            assert r.status_code == 200, r.text
            assert len(r.json()["measurement_uids"]) == len(lines)
        assert max(len(w.shared or b"") for w in app.state.batch_pool._all) > 1 << 20
        got = (await http.get("/api/v1/measurements", params={"limit": 1000})).json()
        assert got["metadata"]["count"] == 600  # small's inputs are among big's


def _worker_call(body: bytes, shared: Shared) -> tuple[Any, int | None, bytes]:
    """One piece through a worker process that shares ``shared``: (failure, length of the rows in
    the shared memory or None, the rows' bytes wherever they came)."""
    worker = subprocess.Popen(
        [sys.executable, "-m", "reachwatch.collector.batch"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        pass_fds=(shared.fd,),
    )
    assert worker.stdin is not None and worker.stdout is not None
    try:
        shared.fit(len(body))
        shared.map[: len(body)] = body
        header = (1, "192.0.2.1", None, "AS64501", "Lab", "PK", (len(body), len(shared)))
        for part in [*frame((b"s" * 32, IDENTITY, False, shared.fd)), *frame(header)]:
            worker.stdin.write(part)
        worker.stdin.flush()
        head_size, bulk_size = SIZES.unpack(worker.stdout.read(SIZES.size))
        failure, shared_rows = pickle.loads(worker.stdout.read(head_size))
        rows = worker.stdout.read(bulk_size)
        return failure, shared_rows, rows if shared_rows is None else shared.map[:shared_rows]
    finally:
        worker.stdin.close()
        worker.wait(10)


def test_rows_bigger_than_the_shared_memory_come_through_the_pipe(
    real_measurements: list[dict[str, Any]],
) -> None:
    big = b"\n".join(batch(real_measurements, 40))
    keep = ("input", "measurement_start_time", "probe_asn", "probe_cc", "software_name", "software_version")
    keep += ("test_name", "data_format_version")
    # the rows' columns and Arrow framing outweigh such a line
    tiny = [
        {**{k: m[k] for k in keep}, "test_keys": {}} for m in map(orjson.loads, batch(real_measurements, 40))
    ]
    small = b"\n".join(orjson.dumps(m) for m in tiny)
    for body, via_shared in ((big, True), (small, False)):
        shared = Shared(size=len(body))  # no room to spare
        try:
            failure, shared_rows, rows = _worker_call(body, shared)
        finally:
            shared.close()
        assert failure is None and (shared_rows is not None) == via_shared
        table = RowColumns.from_ipc(rows).table
        assert table.column("input").to_pylist() == [f"https://site{i}.example/" for i in range(40)]


async def test_bad_lines_are_named_by_their_line_in_the_whole_batch(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    lines = batch(real_measurements)
    lines[6] = b'{"not": "closed"'
    lines[N - 3] = orjson.dumps({"input": 5})
    lines.insert(40, b"   ")  # a blank line still counts in the numbering
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0, ingest_workers=2)) as (_, http):
        r = await http.post("/api/v1/measurements", content=b"\n".join(lines))
        assert r.status_code == 400, r.text
        errors = r.json()["errors"]
        assert [e["line"] for e in errors] == [7, N - 1]
        assert errors[0]["status"] == 400 and errors[1]["status"] == 422
        listing = (await http.get("/api/v1/measurements")).json()
        assert listing["metadata"]["count"] == 0  # nothing stored
        empty = await http.post("/api/v1/measurements", content=b"\n" * (2 * POOLED_LINES))
        assert empty.status_code == 400 and "empty batch" in empty.text


async def test_a_dead_worker_fails_only_its_batch_and_is_replaced(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    lines = batch(real_measurements)
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0, ingest_workers=2)) as (app, http):
        pool = app.state.batch_pool
        before = set(pool.pids)
        for pid in before:
            os.kill(pid, signal.SIGKILL)
        r = await http.post("/api/v1/measurements", content=b"\n".join(lines))
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert (await http.get("/api/v1/measurements")).json()["metadata"]["count"] == 0
        assert set(pool.pids).isdisjoint(before) and len(pool.pids) == 2
        r = await http.post("/api/v1/measurements", content=b"\n".join(lines))
        assert r.status_code == 200, r.text
        assert len(r.json()["measurement_uids"]) == N


async def test_a_worker_killed_while_idle_is_replaced_before_its_next_batch(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    """``reachwatch serve`` (uvloop): a worker killed between batches. uvloop's pipe raised
    RuntimeError on the write to it, which the pool did not take for a death: the dead worker went
    back to the pool and every batch that met it was a 500, for as long as the collector ran."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start(tmp_path / "m.duckdb", port, "--ingest-workers", "2", stderr=subprocess.PIPE)
    try:
        await wait_ready(url, proc)
        body = b"\n".join(batch(real_measurements))
        async with httpx.AsyncClient(timeout=30) as http:
            assert (await http.post(f"{url}/api/v1/measurements", content=body)).status_code == 200
            killed = min(batch_workers(proc.pid))
            os.kill(killed, signal.SIGKILL)
            for _ in range(100):  # until the collector has reaped it
                if not Path(f"/proc/{killed}").exists():
                    break
                await asyncio.sleep(0.02)
            # the death came before these batches: none of them is refused for it
            codes = [
                (await http.post(f"{url}/api/v1/measurements", content=body)).status_code for _ in range(3)
            ]
            assert codes == [200, 200, 200]
            workers = batch_workers(proc.pid)
            assert killed not in workers and len(workers) == 2
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert b"internal error" not in err, err.decode(errors="replace")[-2000:]


async def test_a_hung_worker_is_replaced_and_its_batch_answered_503(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    """A stopped (or otherwise hung) worker must not hold its batch forever: past the call timeout
    the batch gets a 503 + Retry-After, the worker is killed by PID and another takes its place."""
    lines = batch(real_measurements)
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0, ingest_workers=2)) as (app, http):
        pool = app.state.batch_pool
        pool.call_timeout = 1.0
        hung = pool.pids[0]
        os.kill(hung, signal.SIGSTOP)
        try:
            r = await http.post("/api/v1/measurements", content=b"\n".join(lines))
            assert r.status_code == 503 and r.headers["retry-after"] == "1"
            assert hung not in pool.pids and len(pool.pids) == 2
            with pytest.raises(ProcessLookupError):  # killed, and reaped
                os.kill(hung, 0)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(hung, signal.SIGKILL)
        # the new worker's first batch, its imports included, in the usual time (1 s is short on a
        # loaded machine)
        pool.call_timeout = CALL_TIMEOUT
        r = await http.post("/api/v1/measurements", content=b"\n".join(lines))
        assert r.status_code == 200, r.text
        assert len(r.json()["measurement_uids"]) == N


async def test_batches_waiting_for_a_worker_count_against_max_pending(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    """While the workers hold one batch, another that would take the collector past --max-pending
    is a 503 at once, not a wait for a free worker."""
    lines = batch(real_measurements)
    settings = Settings(store=str(tmp_path / "m.duckdb"), rate=0, ingest_workers=1, max_pending=N + N // 2)
    async with collector(settings) as (app, http):
        (worker,) = app.state.batch_pool.pids
        os.kill(worker, signal.SIGSTOP)  # it holds the first batch until let go
        try:
            first = asyncio.create_task(http.post("/api/v1/measurements", content=b"\n".join(lines)))
            while app.state.batch_pool.lines < N:
                await asyncio.sleep(0.01)
            second = await http.post("/api/v1/measurements", content=b"\n".join(lines[::-1]))
            assert second.status_code == 503 and second.headers["retry-after"] == "1", second.text
        finally:
            os.kill(worker, signal.SIGCONT)
        assert (await first).status_code == 200


async def test_workers_stop_with_the_collector(tmp_path: Path) -> None:
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0, ingest_workers=2)) as (app, _):
        pids = app.state.batch_pool.pids
        assert len(pids) == 2 and all(Path(f"/proc/{pid}").exists() for pid in pids)
    for _ in range(100):
        if not any(Path(f"/proc/{pid}").exists() for pid in pids):
            break
        await asyncio.sleep(0.05)
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)


VALUES: list[Any] = [None, 0, -1, 2**63, 1.5, "", "x" * 300, "AS1", [], [1], {}, {"a": None}, True]


def odd_batch(rng: random.Random, good: dict[str, Any]) -> bytes:
    """A batch of 32-96 lines: good, or (some batches) malformed, mistyped or blank at random."""
    lines = []
    odd = rng.choice([0.0, 0.0, 0.03, 0.3])  # the share of lines that are not plainly good
    for n in range(rng.randint(POOLED_LINES, 3 * POOLED_LINES)):
        kind = rng.choice(["bytes", "json", "mistyped", "blank"]) if rng.random() < odd else "good"
        m = copy.deepcopy(good)
        m["input"] = f"https://fuzz{n}.example/"
        if kind == "bytes":
            lines.append(bytes(rng.randrange(256) for _ in range(rng.randint(0, 40))).replace(b"\n", b" "))
        elif kind == "json":
            lines.append(json.dumps(rng.choice(VALUES)).encode())  # json: orjson refuses 2**63
        elif kind == "mistyped":
            key = rng.choice(
                ["probe_cc", "probe_asn", "measurement_start_time", "test_keys", "input", "report_id"]
            )
            m[key] = rng.choice(VALUES)
            lines.append(json.dumps(m).encode())
        elif kind == "blank":
            lines.append(rng.choice([b"", b"  ", b"\t"]))
        else:
            lines.append(orjson.dumps(m))
    return b"\n".join(lines)


async def test_workers_answer_any_batch_as_the_collector_would(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    """Differential: odd big batches (good, malformed, mistyped and blank lines) get the same status
    and the same errors, line for line, from the workers as from the collector's own process."""
    rng = random.Random(11)
    good = web(real_measurements)[0]
    examples = [odd_batch(rng, good) for _ in range(30)]
    answers: dict[int, list[tuple[int, Any]]] = {}
    for workers in (0, 2):
        settings = Settings(store=str(tmp_path / f"f{workers}.duckdb"), rate=0, ingest_workers=workers)
        async with collector(settings) as (_, http):
            answers[workers] = []
            for body in examples:
                r = await http.post("/api/v1/measurements", content=body)
                assert r.status_code < 500, r.text[:500]
                answers[workers].append((r.status_code, r.json().get("errors")))
    assert answers[0] == answers[2]
    assert {status for status, _ in answers[0]} >= {200, 400}


def test_a_worker_stopped_mid_answer_still_sends_all_of_it(real_measurements: list[dict[str, Any]]) -> None:
    """Under PYTHONUNBUFFERED (common in containers) a worker's stdout is unbuffered: a write cut
    short by a stop signal must be finished, not dropped (it hung the batch waiting for the rest)."""
    body = b"\n".join(batch(real_measurements, 4 * POOLED_LINES))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "reachwatch.collector.batch"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    assert worker.stdin is not None and worker.stdout is not None
    try:
        # the piece and the rows in the frames' bulk (no shared memory): the pipe's own path
        for part in [
            *frame((b"s" * 32, IDENTITY, False, None)),
            *frame((1, "192.0.2.1", None, "AS64501", "Lab", "PK", None), body),
        ]:
            worker.stdin.write(part)
        worker.stdin.flush()
        answer = worker.stdout.fileno()
        # the answer (hundreds of KB) fills the 64 KB pipe: the worker blocks inside its write;
        # stop and continue it there, reading a little in between, until it has written everything
        ready, _, _ = select.select([answer], [], [], 30)
        assert ready, "the worker did not answer"
        received = bytearray()
        while True:
            worker.send_signal(signal.SIGSTOP)
            worker.send_signal(signal.SIGCONT)
            ready, _, _ = select.select([answer], [], [], 2)
            if not ready:
                break
            chunk = os.read(answer, 16_384)
            if not chunk:
                break
            received += chunk
        head_size, bulk_size = SIZES.unpack(received[: SIZES.size])
        failure, shared_rows = pickle.loads(received[SIZES.size : SIZES.size + head_size])
        assert failure is None and shared_rows is None
        assert len(received) == SIZES.size + head_size + bulk_size, "part of the answer was lost"
        assert len(RowColumns.from_ipc(bytes(received[SIZES.size + head_size :]))) == 4 * POOLED_LINES
    finally:
        worker.kill()
        worker.wait()


async def test_a_store_from_before_the_identity_record_is_hashed_as_before_on_every_path(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    """An older store's rows have BLAKE2b content hashes: the collector keeps hashing so, in its
    own process and in the batch workers, so that a resend of a row it holds is recognised."""
    db = tmp_path / "older.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute(f"CREATE TABLE {META_TABLE} (key VARCHAR PRIMARY KEY, value BLOB)")
        con.execute(f"INSERT INTO {META_TABLE} VALUES ('secret', ?)", [b"s" * 32])
    lines = batch(real_measurements)
    async with collector(Settings(store=str(db), rate=0, ingest_workers=2)) as (app, http):
        assert app.state.ingestor.identity == app.state.batch_pool.identity == LEGACY_IDENTITY
        one = await http.post("/api/v1/measurements", content=lines[0])  # in the collector's process
        many = await http.post("/api/v1/measurements", content=b"\n".join(lines))  # in the workers
        assert one.status_code == many.status_code == 200, many.text
        assert many.json()["measurement_uids"][0] == one.json()["measurement_uids"][0]
        await app.state.ingestor.settled()
    with duckdb.connect(str(db)) as con:
        hashes = dict(con.execute("SELECT input, content_hash FROM measurements").fetchall())
    for line in lines[:3] + lines[-3:]:
        m = orjson.loads(line)
        canonical = stage(m, b"s" * 32, False, "203.0.113.77", Network(), identity=LEGACY_IDENTITY).canonical
        assert hashes[m["input"]] == hashlib.blake2b(canonical, digest_size=16, key=b"s" * 32).hexdigest()


async def test_a_batch_is_cut_for_the_idle_workers_only(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    """Both workers idle: a piece each; one busy with another batch: whole to the other (a piece is a
    call's cost, and a busy worker would not stage it side by side)."""
    body = b"\n".join(batch(real_measurements))
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0, ingest_workers=2)) as (app, http):
        pool = app.state.batch_pool
        pieces: list[int] = []
        piece = pool._piece

        async def record(*args: Any) -> Any:
            pieces.append(args[1])  # the piece's first line
            return await piece(*args)

        pool._piece = record
        assert (await http.post("/api/v1/measurements", content=body)).status_code == 200
        assert len(pieces) == 2
        pieces.clear()
        busy = await pool._idle.get()  # as if another batch had it
        try:
            r = await http.post("/api/v1/measurements", content=body.replace(b"site", b"other"))
            assert r.status_code == 200 and len(r.json()["measurement_uids"]) == N
        finally:
            pool._idle.put_nowait(busy)
        assert pieces == [1]
