"""The control vantage's helper: ``reachwatch control serve --lab`` on its own address.

That command belongs to another part of reachwatch and has no readiness pipe, so readiness is
"its port is listening" (checked with ``ss`` in the namespace) or "it exited" — then the lab
stays up without a control helper and says so in the state's warnings.
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


def start_control(state: LabState, ns: str, out: Path) -> None:
    argv = [sys.executable, "-m", "reachwatch", "control", "serve", "--host", a.CONTROL,
            "--port", str(a.CONTROL_PORT), "--lab", "--ca-file", str(out / "ca.pem")]  # fmt: skip
    started, fd = netns.spawn("control", ns, argv, out / "logs" / "control.log", ready_fd=False)
    os.close(fd)
    state.processes.append(Process(name="control", ns=ns, pid=started.pid))
    state.save()
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if netns.listening(ns, a.CONTROL_PORT):
            state.control_url = f"http://{a.CONTROL}:{a.CONTROL_PORT}/"
            return
        if not netns.alive(started.pid):
            break
        time.sleep(POLL)  # polling a third-party server's port, not synchronising our own
    netns.kill([started.pid])
    state.processes = [p for p in state.processes if p.pid != started.pid]
    tail = started.log.read_text(errors="replace").strip().splitlines()[-1:] if started.log.exists() else []
    state.warnings.append(
        f"control helper did not start ({' '.join(tail) or 'no output'}); see {started.log}"
    )
