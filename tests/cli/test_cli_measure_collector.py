"""`reachwatch measure --collector`: queued on disk, sent to a real `reachwatch serve` once it is up."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cli_helpers import FAST, free_port, reachwatch

from reachwatch.probe.testing import DnsServer, HttpServer


@pytest.fixture
def collector_port() -> int:
    return free_port()


@pytest.fixture
def serve() -> Iterator[list[subprocess.Popen[bytes]]]:
    """The `reachwatch serve` processes a test started (with ``start_serve``), stopped at the end."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        proc.terminate()
        proc.wait(10)


def start_serve(procs: list[subprocess.Popen[bytes]], port: int, db: Path) -> str:
    proc = subprocess.Popen(
        [sys.executable, "-m", "reachwatch", "serve", "--db", str(db), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    procs.append(proc)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/api/v1/measurements", timeout=1).raise_for_status()
            return url
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError("reachwatch serve did not start")


def pending(outbox: Path) -> list[Path]:
    return list((outbox / "pending").glob("*.json"))


def test_queued_while_down_then_sent(
    http_server: HttpServer,
    dns_server: DnsServer,
    collector_port: int,
    serve: list[subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    url = f"http://127.0.0.1:{collector_port}"
    outbox = tmp_path / "outbox"
    control = f"http://127.0.0.1:{free_port()}/"  # unreachable: a control_failure, still a measurement
    common = ["--control", control, "--resolver", dns_server.resolver, "--collector", url,
              "--outbox", str(outbox), "--no-progress", *FAST]  # fmt: skip
    # two workers: the parent queues both lines
    first = reachwatch("measure", f"{http_server.base}/ok", f"{http_server.base}/other", *common,
                       "--flush-timeout", "1", "--workers", "2")  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert first.stdout == ""  # no --output: nothing on stdout
    assert "sent 0" in first.stderr and "2 still queued" in first.stderr
    queued = [json.loads(p.read_bytes()) for p in pending(outbox)]
    assert sorted(m["input"] for m in queued) == [f"{http_server.base}/ok", f"{http_server.base}/other"]

    start_serve(serve, collector_port, tmp_path / "c.duckdb")
    out = tmp_path / "m.jsonl"
    second = reachwatch("measure", f"{http_server.base}/third", *common, "--output", str(out))
    assert second.returncode == 0, second.stderr
    assert "sent 3" in second.stderr and "queued" not in second.stderr
    assert not pending(outbox)
    assert [json.loads(line)["input"] for line in out.read_text().splitlines()] == [
        f"{http_server.base}/third"
    ]
    results = httpx.get(f"{url}/api/v1/measurements").json()["results"]
    assert len(results) == 3

    again = reachwatch("measure", f"{http_server.base}/third", *common, "--output", "-")
    assert again.returncode == 0 and json.loads(again.stdout)["input"].endswith("/third")
    assert "sent 1" in again.stderr


def test_bad_collector_url_exits_2() -> None:
    result = reachwatch(
        "measure", "http://127.0.0.1/", "--control", "http://127.0.0.1:1/", "--collector", "nope"
    )
    assert result.returncode == 2 and "--collector" in result.stderr
