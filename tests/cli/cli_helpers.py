"""Helpers shared by the CLI tests: run `reachwatch` as a user does, and find a free port."""

from __future__ import annotations

import socket
import subprocess
import sys

FAST = ["--dns-timeout", "1", "--tcp-timeout", "2", "--tls-timeout", "2", "--http-timeout", "2"]


def reachwatch(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reachwatch", *args], capture_output=True, text=True, timeout=timeout
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
