"""``lab run``: measure the lab's targets from every ISP and from the control vantage at once.

Each vantage (every probe of every ISP, and the control vantage) runs ``reachwatch measure``
inside its namespace (so it sees that ISP's resolver and censorship), writing ``DIR/<ns>.jsonl``;
the lines are then gathered in ``DIR/measurements.jsonl``. With a collector running
(``lab run --collector``), each probe also queues its measurements in ``DIR/outbox/<ns>`` and
sends them to the collector across the censoring router, claiming no network (``AS0``/``ZZ``):
the collector attributes them from their lab address, as it does volunteers' ones.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from reachwatch.errors import UserError
from reachwatch.lab import netns
from reachwatch.lab.state import LabState, Vantage
from reachwatch.runtime import usable_cores

#: Measurements in flight in the whole lab, per core. Every vantage, the control helper and the
#: lab's servers share the machine's cores, so the lab does a roughly fixed number of
#: measurements per second (~200/s on 2 cores); what is in flight beyond that only waits
#: (Little's law: 2,000 in flight at 200/s is 10 s each). Ten vantages at --parallel 200 on 2
#: cores waited past the probes' timeouts: the sites' accept queues overflowed, the control's
#: lookups timed out, and clean ISPs got dns-hijack, tcp-timeout and site.down verdicts.
#: At 200 per core a measurement waits ~2 s at most, well inside every step's timeout.
IN_FLIGHT_PER_CORE = 200
#: a vantage's --parallel when none is asked, on machines with cores enough to give each more
LAB_PARALLEL_MAX = 400


@dataclass(frozen=True)
class Timeouts:
    dns: float | None = None
    tcp: float | None = None
    tls: float | None = None
    http: float | None = None
    parallel: int | None = None
    workers: int | None = None  # the probe's --workers; None: its own default (one per core)

    def flags(self) -> list[str]:
        pairs = [("--dns-timeout", self.dns), ("--tcp-timeout", self.tcp), ("--tls-timeout", self.tls),
                 ("--http-timeout", self.http), ("--parallel", self.parallel),
                 ("--workers", self.workers)]  # fmt: skip
        return [str(x) for name, value in pairs if value is not None for x in (name, value)]


@dataclass
class VantageResult:
    vantage: Vantage
    output: Path
    returncode: int
    seconds: float
    stderr: str
    lines: list[str] = field(default_factory=list)
    queued: int | None = None  # left in the outbox, when sending to a collector


def measure_argv(state: LabState, vantage: Vantage, timeouts: Timeouts) -> list[str]:
    out = Path(state.out)
    if state.control_url is None:
        raise UserError(
            "the lab has no control helper, so `reachwatch measure` cannot run",
            fix=f"see {out / 'logs' / 'control.log'}; {'; '.join(state.warnings)}",
        )
    argv = [
        sys.executable, "-m", "reachwatch", "measure", "--list", str(out / "targets.csv"),
        "--control", state.control_url, "--ca-file", str(out / "ca.pem"), "--resolver", state.resolver,
        "--output", str(out / f"{vantage.ns}.jsonl"), "--no-progress", *timeouts.flags(),
    ]  # fmt: skip
    if state.collector_url:  # claim nothing: the collector attributes from the address
        return [*argv, "--collector", state.collector_url, "--outbox", str(outbox(state, vantage))]
    return [*argv, "--probe-asn", f"AS{vantage.asn}", "--probe-cc", vantage.cc,
            "--probe-network-name", vantage.name]  # fmt: skip


def outbox(state: LabState, vantage: Vantage) -> Path:
    return Path(state.out) / "outbox" / vantage.ns


async def _one(state: LabState, vantage: Vantage, timeouts: Timeouts) -> VantageResult:
    output = Path(state.out) / f"{vantage.ns}.jsonl"
    output.unlink(missing_ok=True)
    t0 = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *netns.in_ns(vantage.ns, measure_argv(state, vantage, timeouts)),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    lines = output.read_text().splitlines() if output.exists() else []
    box = outbox(state, vantage) / "pending"
    queued = len(list(box.glob("*.json"))) if state.collector_url and box.is_dir() else None
    return VantageResult(vantage, output, proc.returncode or 0, time.monotonic() - t0, err.decode(errors="replace"),
                         [line for line in lines if line.strip()], queued)  # fmt: skip


async def _all(state: LabState, timeouts: Timeouts) -> list[VantageResult]:
    return list(await asyncio.gather(*(_one(state, v, timeouts) for v in state.vantages)))


def vantage_parallel(requested: int | None, vantages: int, ncores: int | None = None) -> int:
    """Each vantage's ``--parallel``: what was asked, at most an equal share of the lab's
    IN_FLIGHT_PER_CORE budget, and at least 1. Unasked, the share itself, up to LAB_PARALLEL_MAX:
    the probe's own default (100) is set for a home router's DNS forwarder, which the lab does not
    have (its resolvers take 10,000 queries at once), and a vantage whose sites time out holds a
    slot per dropped site for the whole timeout (a 2,296-site list with 229 dropped: 44 s at 100
    beside two other vantages, 36 s at their share of 133)."""
    share = IN_FLIGHT_PER_CORE * (ncores or usable_cores()) // max(1, vantages)
    return max(1, min(requested or LAB_PARALLEL_MAX, share))


def vantage_workers(vantages: int, ncores: int | None = None) -> int:
    """Each vantage's probe processes: the cores shared out, at least one. Every vantage measures
    at once beside the helper and the lab's servers, so a probe's own default (one process per
    core) put twice as many measuring processes as cores on a 2-core lab: more switching and
    pipes, no more work done (one process: ~2.3 ms of probe CPU per measurement; two: ~2.8)."""
    return max(1, (ncores or usable_cores()) // max(1, vantages))


def measure_all(state: LabState, timeouts: Timeouts) -> list[VantageResult]:
    timeouts = dataclasses.replace(
        timeouts,
        parallel=vantage_parallel(timeouts.parallel, len(state.vantages)),
        workers=timeouts.workers or vantage_workers(len(state.vantages)),
    )
    for vantage in state.vantages:
        measure_argv(state, vantage, timeouts)  # fails early when there is no control helper
    results = asyncio.run(_all(state, timeouts))
    with (Path(state.out) / "measurements.jsonl").open("w") as f:
        for result in results:
            f.writelines(line + "\n" for line in result.lines)
    return results


def summary(results: list[VantageResult], parallel: int | None = None) -> str:
    """One line per vantage: measurements written, and the techniques seen when verdicts exist;
    first, how many each measured at once when ``parallel`` (as asked) is given."""
    rows = []
    if parallel is not None and results:
        each = vantage_parallel(parallel, len(results))
        capped = f" (capped: {IN_FLIGHT_PER_CORE} per core for the whole lab)" if each < parallel else ""
        rows.append(f"{len(results)} vantages, {each} measurements at once each{capped}")
    for r in results:
        techniques: Counter[str] = Counter()
        for line in r.lines:
            try:
                tk = json.loads(line).get("test_keys", {})
            except json.JSONDecodeError:
                continue
            techniques[str(tk.get("x_technique") or tk.get("blocking") or "?")] += 1
        seen = ", ".join(f"{k}={v}" for k, v in sorted(techniques.items()))
        status = "ok" if r.returncode == 0 else f"exit {r.returncode}: {r.stderr.strip().splitlines()[-1:]}"
        if r.queued is not None:
            status += f", {r.queued} still queued for the collector" if r.queued else ", all sent"
        rows.append(f"{r.vantage.ns:<14} {r.vantage.name:<24} {len(r.lines):>5} measurements "
                    f"in {r.seconds:.1f}s  {status}  {seen}")  # fmt: skip
    return "\n".join(rows)
