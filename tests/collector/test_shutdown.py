"""A collector stopped with SIGTERM during ingest ends cleanly: every process and queue released."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import duckdb
import httpx

from collector.test_app import web
from collector.test_durability import free_port, measurements, start, wait_ready


async def test_sigterm_during_ingest_leaves_nothing_behind(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    """The analysis process's queues are closed at shutdown: before, Python's resource tracker
    warned of 'leaked semaphore objects' on every stop."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start(tmp_path / "m.duckdb", port, stderr=subprocess.PIPE)
    try:
        await wait_ready(url, proc)
        lines = measurements(web(real_measurements)[0])
        async with httpx.AsyncClient(timeout=30) as http:
            for first in range(0, 400, 100):  # stored, then analysed in the analysis process
                body = b"\n".join(lines[first : first + 100])
                assert (await http.post(f"{url}/api/v1/measurements", content=body)).status_code == 200
        await asyncio.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # uvicorn shuts down gracefully, then re-raises the signal so the exit status shows it
    assert proc.returncode in (0, -signal.SIGTERM), err.decode(errors="replace")[-2000:]
    assert b"leaked" not in err and b"Traceback" not in err, err.decode(errors="replace")[-2000:]


async def test_sigterm_to_the_process_group_finishes_the_batch_in_hand(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    """systemd (KillMode=control-group) and ^C signal every process of the collector: the batch
    workers died of it, so a batch they held was refused (503) and new workers were started during
    the shutdown. The workers leave the signal to the collector, which finishes what it holds."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    db = tmp_path / "m.duckdb"
    proc = start(db, port, "--ingest-workers", "2", stderr=subprocess.PIPE, new_session=True)
    try:
        await wait_ready(url, proc)
        await asyncio.sleep(1.0)  # the workers have imported
        lines = measurements(web(real_measurements)[0])[:600]
        async with httpx.AsyncClient(timeout=30) as http:
            sent = asyncio.create_task(http.post(f"{url}/api/v1/measurements", content=b"\n".join(lines)))
            await asyncio.sleep(0.05)  # in the workers' hands
            os.killpg(proc.pid, signal.SIGTERM)
            answer = await sent
        _, err = await asyncio.to_thread(proc.communicate, timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert answer.status_code == 200, answer.text
    assert b"died" not in err, err.decode(errors="replace")[-2000:]
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM measurements").fetchall()[0][0] == len(lines)
    finally:
        con.close()


def _running(pid: int) -> bool:
    """Whether ``pid`` is still running (not gone, nor a zombie)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] not in ("Z", "X")
    except OSError:
        return False


def _children(pid: int) -> dict[int, str]:
    """The running children of ``pid``: command lines by PID."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rpartition(")")[2].split()
            if int(stat[1]) == pid and stat[0] not in ("Z", "X"):
                out[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue
    return out


async def test_a_stopped_analysis_process_does_not_hold_up_the_stop(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    """An analysis process that never finishes its batch (stopped here; hung on some measurement)
    made SIGTERM wait for it forever; it now gets ``SHUTDOWN_WAIT`` seconds, then is killed by PID,
    and the pool's queues are still released."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start(tmp_path / "m.duckdb", port, stderr=subprocess.PIPE)
    stopped = None
    try:
        await wait_ready(url, proc)
        lines = measurements(web(real_measurements)[0])
        async with httpx.AsyncClient(timeout=30) as http:
            assert (
                await http.post(f"{url}/api/v1/measurements", content=b"\n".join(lines[:50]))
            ).status_code == 200
            for _ in range(600):  # the analysis process starts with the first verdicts
                spawned = [p for p, cmd in _children(proc.pid).items() if "spawn_main" in cmd]
                if spawned:
                    break
                await asyncio.sleep(0.05)
            assert spawned, "no analysis process was started"
            stopped = spawned[0]
            os.kill(stopped, signal.SIGSTOP)
            body = b"\n".join(lines[50:150])  # its next batch waits in the stopped process
            assert (await http.post(f"{url}/api/v1/measurements", content=body)).status_code == 200
        await asyncio.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.to_thread(proc.communicate, timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if stopped is not None and _running(stopped):
            os.kill(stopped, signal.SIGKILL)
    assert proc.returncode in (0, -signal.SIGTERM), err.decode(errors="replace")[-2000:]
    assert b"leaked" not in err and b"Traceback" not in err, err.decode(errors="replace")[-2000:]
    assert not _running(stopped)
