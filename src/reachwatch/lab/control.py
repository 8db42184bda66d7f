"""The control vantage's helper: ``reachwatch control serve --lab`` on its own address.

Services from other parts of reachwatch (the control helper, the collector) have no readiness
pipe, so readiness is "its port is listening" (checked with ``ss`` in the namespace) or "it
exited" — then the lab stays up without a control helper and says so in the state's warnings.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from reachwatch.lab import addressing as a
from reachwatch.lab import netns
from reachwatch.lab.state import LabState, Process

READY_TIMEOUT = 20.0
POLL = 0.05


def start_service(
    state: LabState, name: str, ns: str, argv: list[str], port: int, *, timeout: float = READY_TIMEOUT
) -> Path | None:
    """Spawn ``argv`` in ``ns``, record its PID, and wait until ``port`` listens there.

    Returns None when it is ready; otherwise kills it, forgets it and returns its log's path.
    """
    log = Path(state.out) / "logs" / f"{name}.log"
    started, fd = netns.spawn(name, ns, argv, log, ready_fd=False)
    os.close(fd)
    state.processes.append(Process(name=name, ns=ns, pid=started.pid))
    state.save()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if netns.listening(ns, port):
            return None
        if not netns.alive(started.pid):
            break
        time.sleep(POLL)  # polling another command's port, not synchronising our own
    netns.kill([started.pid])
    state.processes = [p for p in state.processes if p.pid != started.pid]
    state.save()
    return started.log


def start_control(state: LabState, ns: str, out: Path) -> None:
    argv = [sys.executable, "-m", "reachwatch", "control", "serve", "--host", a.CONTROL,
            "--port", str(a.CONTROL_PORT), "--lab", "--ca-file", str(out / "ca.pem")]  # fmt: skip
    failed = start_service(state, "control", ns, argv, a.CONTROL_PORT)
    if failed is None:
        state.control_url = f"http://{a.CONTROL}:{a.CONTROL_PORT}/"
        return
    tail = failed.read_text(errors="replace").strip().splitlines()[-1:] if failed.exists() else []
    state.warnings.append(f"control helper did not start ({' '.join(tail) or 'no output'}); see {failed}")
