"""The throwaway ClickHouse server of the tests and benchmarks: gone with what started it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reachwatch.store import clickhouse_server


def _servers_in(workdir: Path) -> list[int]:
    """PIDs of processes whose command line names ``workdir``'s config."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if str(workdir).encode() in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


@pytest.mark.clickhouse
def test_a_server_whose_starter_is_killed_goes_too(tmp_path: Path) -> None:
    """A test run killed by its timeout (SIGKILL: no ``finally``) had left its server running."""
    if clickhouse_server.binary() is None:
        pytest.skip("clickhouse-server is not installed (apt-get install clickhouse-server)")
    workdir = tmp_path / "ch"
    code = (
        "import sys, time\nfrom pathlib import Path\nfrom reachwatch.store import clickhouse_server\n"
        f"with clickhouse_server.running(Path({str(workdir)!r})) as url:\n"
        "    print(url, flush=True)\n    time.sleep(600)\n"
    )
    starter = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert starter.stdout is not None
        assert starter.stdout.readline().startswith(b"http://127.0.0.1:")
        servers = _servers_in(workdir)
        assert servers, "the server is not running"
    finally:
        os.kill(starter.pid, signal.SIGKILL)
        starter.wait()
    for _ in range(200):
        if not _servers_in(workdir):
            return
        time.sleep(0.05)
    for pid in _servers_in(workdir):  # not left to the next test run either way
        os.kill(pid, signal.SIGKILL)
    raise AssertionError("the server outlived the process that started it")
