"""Shared fixtures: loopback servers (a throwaway CA, HTTP(S) and DNS servers) for probe,
control-helper and CLI tests. Session-scoped ones start only when a test asks for them."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from reachwatch.probe.testing import DnsServer, HttpServer, LoopThread, ThrowawayCA, server_context


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.stop()


@pytest.fixture(scope="session")
def ca(tmp_path_factory: pytest.TempPathFactory) -> ThrowawayCA:
    return ThrowawayCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="session")
def http_server(loop_thread: LoopThread) -> Iterator[HttpServer]:
    server = HttpServer(loop_thread)
    yield server
    server.close()


@pytest.fixture(scope="session")
def https_server(loop_thread: LoopThread, ca: ThrowawayCA) -> Iterator[HttpServer]:
    server = HttpServer(loop_thread, server_context(ca.issue(["localhost", "127.0.0.1"], label="good")))
    yield server
    server.close()


@pytest.fixture
def dns_server(loop_thread: LoopThread) -> Iterator[DnsServer]:
    server = DnsServer(loop_thread)
    yield server
    server.close()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nobody listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def ca_file(ca: ThrowawayCA) -> Path:
    return ca.ca_file


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs of the test's own, unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    where = tmp_path / "disk"
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(where)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
