"""A throwaway local ``clickhouse-server`` for tests and benchmarks (loopback, own ports, own dirs).

Copies the system config, points data and logs into a directory, listens on 127.0.0.1 only (no
IPv6), picks free ports, waits until ``/ping`` answers, and kills the process by its PID on exit,
or, on Linux, when the thread that started it ends without getting there (``PR_SET_PDEATHSIG``):
a test run killed by its timeout (SIGKILL runs no ``finally``) had left its server running. Start it
from a thread that lives as long as the server is needed (pytest's session fixtures, a script's
main thread).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

CONFIG_DIR = Path("/etc/clickhouse-server")


#: ``prctl(2)``, looked up before any fork: the child only calls it
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the server's process, before its exec: SIGKILL when the thread that started it ends."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)


def binary() -> str | None:
    return shutil.which("clickhouse-server") or shutil.which("clickhouse")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(workdir: Path) -> int:
    """Write config.xml + users.xml under ``workdir``; return the HTTP port."""
    text = (CONFIG_DIR / "config.xml").read_text()
    text = re.sub(r"<listen_host>[^<]*</listen_host>", "", text)
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    ports = {tag: _free_port() for tag in ("http_port", "tcp_port", "interserver_http_port")}
    for tag, port in ports.items():
        text = re.sub(rf"<{tag}>\d+</{tag}>", f"<{tag}>{port}</{tag}>", text)
    for tag in ("path", "tmp_path", "user_files_path", "format_schema_path"):
        sub = {"path": "data/", "tmp_path": "tmp/", "user_files_path": "user_files/"}.get(tag, "schemas/")
        text = re.sub(rf"<{tag}>/var/lib/clickhouse/[^<]*</{tag}>", f"<{tag}>{workdir / sub}</{tag}>", text)
    text = re.sub(r"<log>[^<]*</log>", f"<log>{workdir / 'server.log'}</log>", text)
    text = re.sub(r"<errorlog>[^<]*</errorlog>", f"<errorlog>{workdir / 'server.err.log'}</errorlog>", text)
    extra = "<listen_host>127.0.0.1</listen_host><timezone>UTC</timezone>"
    text = text.replace("</yandex>", f"{extra}</yandex>", 1)
    (workdir / "config.xml").write_text(text)
    shutil.copy(CONFIG_DIR / "users.xml", workdir / "users.xml")
    return ports["http_port"]


@contextlib.contextmanager
def running(workdir: Path, timeout: float = 30.0) -> Iterator[str]:
    """Run a server in ``workdir``; yields its base URL ``http://127.0.0.1:PORT``."""
    exe = binary()
    if exe is None:
        raise FileNotFoundError("clickhouse-server is not installed (apt-get install clickhouse-server)")
    workdir.mkdir(parents=True, exist_ok=True)
    port = write_config(workdir)
    args = [exe] if exe.endswith("clickhouse-server") else [exe, "server"]
    log = open(workdir / "stdout.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [*args, f"--config-file={workdir / 'config.xml'}"],
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_die_with_parent,  # a single libc call, looked up beforehand
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"clickhouse-server exited with {proc.returncode}; see {workdir}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/ping", timeout=1.0).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"clickhouse-server not ready after {timeout}s; see {workdir}")
            time.sleep(0.05)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()
