"""Acknowledged means stored: 20 `kill -9` of the collector during a bulk ingest lose nothing
(what a kill leaves in the journal is stored by the next start). Three clients send batches, one
sends each measurement on its own through OONI's report protocol.

Default 2,000 measurements; ``REACHWATCH_KILL_MEASUREMENTS=50000`` for the long run.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import duckdb
import httpx
import orjson
import pytest

from collector.conftest import collector
from collector.test_app import OPEN, web
from reachwatch.collector import ingest
from reachwatch.collector.config import Settings
from reachwatch.store import clickhouse_server

TOTAL = int(os.environ.get("REACHWATCH_KILL_MEASUREMENTS", "2000"))
KILLS = 20
BATCH = 20
#: Batches alternate between these sizes: staged in the collector's process, and in its batch
#: worker processes (from batch.POOLED_LINES lines)
SIZES = (BATCH, 48)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(
    db: Path,
    port: int,
    *options: str,
    stderr: int | IO[bytes] = subprocess.DEVNULL,
    new_session: bool = False,
) -> subprocess.Popen[bytes]:
    """``reachwatch serve`` on ``db`` (``options`` added to its command line); ``new_session``:
    in a process group of its own (signalled as a service manager would, with its children)."""
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "reachwatch", "serve", "--db", str(db)),
            *("--port", str(port), "--rate", "0", *options),
        ],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        start_new_session=new_session,
    )


async def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(600):
            if proc.poll() is not None:
                raise RuntimeError(f"collector exited with {proc.returncode}")
            try:
                await http.get(f"{url}/api/v1/measurement/none", timeout=1)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    raise TimeoutError("collector did not start")


def batch_workers(pid: int) -> set[int]:
    """The collector's batch worker processes (its children running reachwatch.collector.batch)."""
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                if b"reachwatch.collector.batch" in Path(f"/proc/{child}/cmdline").read_bytes():
                    found.add(int(child))
            except OSError:
                continue
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def measurements(sample: dict[str, Any]) -> list[bytes]:
    out = []
    for i in range(TOTAL):
        m = copy.deepcopy(sample)
        m["input"] = f"https://site{i}.example/"
        m["measurement_start_time"] = f"2026-11-{1 + i % 28:02d} 00:{i // 60 % 60:02d}:{i % 60:02d}"
        out.append(orjson.dumps(m))
    return out


async def test_kill_9_loses_no_acknowledged_measurement(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    db = tmp_path / "m.duckdb"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    lines = measurements(web(real_measurements)[0])
    starts = [0]
    while starts[-1] < len(lines):
        starts.append(starts[-1] + SIZES[len(starts) % 2])
    batches = [lines[a:b] for a, b in itertools.pairwise(starts)]
    acked: dict[int, str] = {}
    todo: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(batches)):
        todo.put_nowait(i)
    proc = start(db, port)
    await wait_ready(url, proc)

    async def post(http: httpx.AsyncClient, path: str, body: bytes) -> httpx.Response:
        """``body`` sent until the collector answers it (it is killed and restarted meanwhile)."""
        while True:
            try:
                r = await http.post(f"{url}{path}", content=body)
            except httpx.TransportError:
                await asyncio.sleep(0.05)
                continue
            if r.status_code == 200:
                return r
            assert r.status_code in (429, 503), r.text
            await asyncio.sleep(0.05)

    async def client(single: bool) -> None:
        """Batches, or (``single``) each of a batch's measurements on its own, as OONI probes send."""
        async with httpx.AsyncClient(timeout=10) as http:
            report = (await post(http, "/report", orjson.dumps(OPEN))).json()["report_id"]
            while not todo.empty():
                i = todo.get_nowait()
                if not single:
                    r = await post(http, "/api/v1/measurements", b"\n".join(batches[i]))
                    for k, uid in enumerate(r.json()["measurement_uids"]):
                        acked[starts[i] + k] = uid
                    continue
                for k, line in enumerate(batches[i]):
                    body = b'{"format":"json","content":' + line + b"}"
                    r = await post(http, f"/report/{report}", body)
                    acked[starts[i] + k] = r.json()["measurement_uid"]

    async def killer() -> int:
        nonlocal proc
        kills = 0
        rng = random.Random(7)
        # kill points spread over the run by progress, each at a random instant after its threshold
        thresholds = sorted(rng.sample(range(TOTAL - max(SIZES) * 8), KILLS))
        for threshold in thresholds:
            while len(acked) < threshold:
                await asyncio.sleep(0.001)
            await asyncio.sleep(rng.uniform(0, 0.02))
            workers = batch_workers(proc.pid)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            orphans.update(workers)
            kills += 1
            proc = start(db, port)
            await wait_ready(url, proc)
        return kills

    orphans: set[int] = set()
    started = time.monotonic()
    clients = [asyncio.create_task(client(single=n == 0)) for n in range(4)]
    kills = await killer()
    await asyncio.gather(*clients)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(acked) == TOTAL
    # the batch workers of each killed collector exit with it (their stdin closes)
    assert orphans, "no batch worker process seen"
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in orphans) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not [pid for pid in orphans if alive(pid)], "batch workers outlived their collector"
    assert kills == KILLS, f"only {kills} kills in {time.monotonic() - started:.1f}s"
    # what the last kill left in the journal is stored by the next start
    proc = start(db, port)
    await wait_ready(url, proc)
    proc.terminate()
    assert proc.wait(timeout=30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it handled
    assert not list(Path(f"{db}.journal").glob("*.rwj")), "journal segments left after a clean stop"
    con = duckdb.connect(str(db), read_only=True)
    stored = {r[0] for r in con.execute("SELECT measurement_uid FROM measurements").fetchall()}
    (count,) = con.execute("SELECT count(*) FROM measurements").fetchall()[0]
    con.close()
    missing = set(acked.values()) - stored
    assert not missing, f"{len(missing)} acknowledged measurements lost"
    assert count == TOTAL == len(set(acked.values())), "a resent measurement was stored twice"


def _server_pid(workdir: Path) -> int:
    """The PID of the clickhouse-server this test started in ``workdir`` (by its config file)."""
    found = subprocess.run(
        ["pgrep", "-f", "--", f"--config-file={workdir / 'config.xml'}"], capture_output=True, text=True
    ).stdout.split()
    assert len(found) == 1, found
    return int(found[0])


@pytest.mark.clickhouse
async def test_a_stalled_store_is_a_prompt_503_and_the_resend_is_stored_once(
    tmp_path: Path, real_measurements: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ClickHouse that stops answering (SIGSTOP, not down) held each request until the store
    client's 60 s timeout (an outside check, session 15): now a 503 after ingest.STORE_WAIT, health
    says the store is failing, and what was queued meanwhile is stored once with its resend."""
    if clickhouse_server.binary() is None:
        pytest.skip("clickhouse-server is not installed: ClickHouse tests skipped")
    monkeypatch.setattr(ingest, "STORE_WAIT", 1.0)
    lines = b"\n".join(orjson.dumps(m) for m in web(real_measurements)[:5])
    workdir = tmp_path / "clickhouse"
    with clickhouse_server.running(workdir) as url:
        settings = Settings(store=f"{url}/stalled", rate=0, journal=False)
        async with collector(settings) as (_, http):
            assert (await http.post("/api/v1/measurements", content=lines.split(b"\n")[0])).status_code == 200
            pid = _server_pid(workdir)
            os.kill(pid, signal.SIGSTOP)
            try:
                started = time.monotonic()
                r = await http.post("/api/v1/measurements", content=lines)
                waited = time.monotonic() - started
                assert r.status_code == 503 and r.headers["retry-after"], r.text
                assert "has not taken these measurements" in r.json()["error"] and waited < 10
                assert (await http.get("/api/v1/health")).json()["status"] == "store failing"
            finally:
                os.kill(pid, signal.SIGCONT)
            for _ in range(100):  # the stalled commit ends once the server runs again
                r = await http.post("/api/v1/measurements", content=lines)
                if r.status_code == 200:
                    break
                await asyncio.sleep(0.2)
            assert r.status_code == 200, r.text
            assert (await http.get("/api/v1/measurements")).json()["metadata"]["count"] == 5
