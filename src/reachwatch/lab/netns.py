"""Thin, batched wrappers around ``ip``, ``nft``, ``iptables-restore``, ``tc`` and process control.

Every command that changes the system goes through :func:`run`, which raises :class:`LabError`
with the command's own error text. Servers are started with :func:`spawn`, which waits for the
server to write ``ready`` on an inherited pipe (no sleeping as synchronisation).
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reachwatch.errors import UserError
from reachwatch.runtime import alive

NETNS_ETC = Path("/etc/netns")


class LabError(Exception):
    """Building or tearing down the lab failed (a command failed, a server did not start)."""


def require_root() -> None:
    if os.geteuid() != 0:
        raise UserError("the lab needs root (network namespaces)", fix="run as root, e.g. with sudo")
    if shutil.which("ip") is None:
        raise UserError("`ip` (iproute2) is not installed", fix="apt-get install iproute2")


def in_ns(ns: str | None, argv: Sequence[str]) -> list[str]:
    return ["ip", "netns", "exec", ns, *argv] if ns else list(argv)


def run(argv: Sequence[str], *, ns: str | None = None, stdin: str | None = None, check: bool = True) -> str:
    cmd = in_ns(ns, argv)
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        where = f" in {ns}" if ns else ""
        raise LabError(f"`{' '.join(argv)}`{where} failed: {proc.stderr.strip() or proc.returncode}")
    return proc.stdout


def ip_batch(lines: Sequence[str], *, ns: str | None = None) -> None:
    if lines:
        run(["ip", *(["-n", ns] if ns else []), "-batch", "-"], stdin="\n".join(lines) + "\n")


def nft_load(ruleset: str, *, ns: str) -> None:
    if ruleset.strip():
        run(["nft", "-f", "-"], ns=ns, stdin=ruleset)


def iptables_load(rules: Sequence[str], *, ns: str) -> None:
    if rules:
        run(["iptables-restore", "--noflush"], ns=ns, stdin="*filter\n" + "\n".join(rules) + "\nCOMMIT\n")


def sysctl(ns: str, **values: str) -> None:
    run(["sysctl", "-qw", *(f"{k.replace('__', '.')}={v}" for k, v in values.items())], ns=ns)


def list_netns() -> set[str]:
    out = run(["ip", "netns", "list"], check=False)
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def ns_pids(ns: str) -> list[int]:
    return [int(p) for p in run(["ip", "netns", "pids", ns], check=False).split()]


def kill(pids: Sequence[int], timeout: float = 2.0) -> None:
    """SIGTERM, then SIGKILL whatever still lives after ``timeout``; reap our own children."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    left = [p for p in pids if _reap(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.01)
        left = [p for p in left if _reap(p)]
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _reap(pid)


def _reap(pid: int) -> bool:
    """True while ``pid`` still lives."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    return alive(pid)


def delete_ns(ns: str) -> None:
    """Kill what runs in ``ns``, delete it and its /etc/netns directory; fine if already gone."""
    if ns in list_netns():
        kill(ns_pids(ns))
        run(["ip", "netns", "del", ns], check=False)
    shutil.rmtree(NETNS_ETC / ns, ignore_errors=True)


def write_resolv_conf(ns: str, nameserver: str) -> None:
    (NETNS_ETC / ns).mkdir(parents=True, exist_ok=True)
    # single-request-reopen: glibc sends A and AAAA from one socket at once, and when the router
    # DNATs them to its resolver, conntrack can drop one of the pair (a known kernel race); the
    # lookup would then wait out its timeout and look like DNS blocking.
    options = "options timeout:2 attempts:1 single-request-reopen"
    (NETNS_ETC / ns / "resolv.conf").write_text(f"nameserver {nameserver}\n{options}\n")


@dataclass
class Started:
    name: str
    ns: str
    pid: int
    log: Path


def spawn(
    name: str, ns: str, argv: Sequence[str], log: Path, *, ready_fd: bool = True
) -> tuple[Started, int]:
    """Start ``argv`` in ``ns``, detached; return it and the read end of its readiness pipe.

    With ``ready_fd`` the child gets the write end's number appended as ``--ready-fd N``.
    """
    read_fd, write_fd = os.pipe()
    extra = ["--ready-fd", str(write_fd)] if ready_fd else []
    with log.open("ab") as out:
        proc = subprocess.Popen(
            in_ns(ns, [*argv, *extra]),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            pass_fds=(write_fd,) if ready_fd else (),
            start_new_session=True,
        )
    os.close(write_fd)
    return Started(name, ns, proc.pid, log), read_fd


def listening(ns: str, port: int) -> bool:
    return bool(run(["ss", "-Hltn", f"sport = :{port}"], ns=ns, check=False).strip())


def wait_ready(started: Started, read_fd: int, timeout: float = 20.0) -> None:
    """Block until the server writes a line on its pipe; raise with its log if it dies first."""
    try:
        ready, _, _ = select.select([read_fd], [], [], timeout)
        line = os.read(read_fd, 64) if ready else b""
    finally:
        os.close(read_fd)
    if not line.startswith(b"ready"):
        tail = started.log.read_text(errors="replace")[-2000:] if started.log.exists() else ""
        why = "did not report ready in time" if not ready else "exited before it was ready"
        raise LabError(f"{started.name} in {started.ns} {why}:\n{tail}")
