"""Settings of the long, busy processes: the collector and its workers, the probe, the control helper."""

from __future__ import annotations

import gc
import os
import resource

#: Python's default is 700 allocations. Each measurement (parsed, built or fetched) is hundreds of
#: short-lived containers, so the youngest generation is scanned several times per measurement
#: at the default, and each scan walks every object imported before.
GC_THRESHOLD = 20_000


def settle_gc(threshold: int = GC_THRESHOLD) -> None:
    """Move everything alive now (the imported modules) out of the collector's scans, and let the
    youngest generation fill up before it is scanned. Called once, after the imports and before
    any fork (the frozen objects are then not written to, so forked children keep sharing them)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(threshold, 20, 20)


#: What a server asks for (the collector, the control helper): a connection per client at once.
SERVER_OPEN_FILES = 65_536


def raise_open_files(need: int) -> int:
    """Raise this process's soft limit on open files (``ulimit -n``) to ``need``, as far as the
    hard limit allows, as Go's runtime does for every program (OONI's probe among them). Debian's
    soft limit is 1,024, its hard limit far higher. Returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return need if soft == resource.RLIM_INFINITY else soft
    target = need if hard == resource.RLIM_INFINITY else min(need, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):  # a container that forbids it: keep what there is
        return soft
    return target


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cpu_and_state(pid: int) -> tuple[float, str] | None:
    """(CPU seconds process ``pid`` has used, its state: ``R`` running or waiting for a CPU, ``S``
    sleeping, ``T`` stopped...) from ``/proc``; None where that cannot be read (gone, no /proc)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rpartition(b")")[2].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS, fields[0].decode()
    except (OSError, IndexError, ValueError):
        return None


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs: neither gone nor a zombie waiting to be reaped (``kill(pid,
    0)`` still finds those). Without ``/proc``, whether it can be signalled."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rpartition(b")")[2].split()[0] not in (b"Z", b"X")
    except FileNotFoundError:  # gone since
        return False
    except (OSError, IndexError):
        return True
