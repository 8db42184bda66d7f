"""Collector ingest counted in instructions (callgrind), not timed: a figure the machine's hour does not move.

The wall-clock benchmark (``collector_ingest.py``) swings by up to half between hours on a shared
machine, so a change worth 5 % cannot be told from the noise there. Instructions are: callgrind
counts the same total for the same code and input whatever else the machine runs. This benchmark
starts the collector (DuckDB, its default journal, batch workers and background analysis) under
``valgrind --tool=callgrind --trace-children=yes``, sends it a fixed number of distinct median
measurements from a separate process, waits until it and its analysis are idle, stops it gracefully
and sums the instructions of each of its processes: the collector's own (all threads: HTTP, the
journal, DuckDB), the batch workers, the background analysis. Two runs with different numbers of
batches are subtracted, so start-up and shut-down cancel: what is left is the cost of the lines
themselves. The baseline is the bare FastAPI endpoint of ``collector_ingest.py`` taking the same
bodies in the same way (what the framework alone costs).

    .venv/bin/python benchmarks/collector_instructions.py [--mode batch|single] [--batches 2 8]
        [--batch 500] [--size small|median] [--source 127.0.0.2] [--against /path/to/other/tree]

``--against``: another source tree (a git worktree of an older commit, say, with its compiled
modules built: ``setup.py build_ext --inplace``) counted the same way in the same run, and the
ratio of the two printed: how a change moved the cost, without the machine's swings. ``single``
posts measurements through OONI's protocol, ``--connections`` (32) at once (``--batches`` then counts groups of
``--batch`` posts). Expect a few minutes: callgrind runs code ~50x slower.

Timing-dependent work moves the counts a little between runs (how the analysis groups its rows,
when DuckDB checkpoints): repeat a run to see the spread before reading a change of under ~1 %.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from collector_ingest import OPEN_REPORT, PLACEHOLDER, cpu_seconds, free_port, sample, wait_idle

HERE = Path(__file__).resolve()
TREE = HERE.parents[1]
#: Seconds the server gets to start under callgrind (imports run ~50x slower)
START_LIMIT = 600.0
#: Seconds without CPU use that count as idle (the analysis runs after a pause in ingest)
IDLE = 3.0
#: The process classes, by what their command line holds
CLASSES = (("batch workers", "reachwatch.collector.batch"), ("collector", "reachwatch serve"))
OTHER = "analysis and other"
ECHO = "echo"


@dataclass
class Count:
    """Instructions of one run, by process class, and the lines it was sent."""

    lines: int
    by_class: dict[str, int] = field(default_factory=dict)

    def minus(self, other: Count) -> dict[str, float]:
        """Instructions per line of the lines one run has over the other, by class."""
        lines = self.lines - other.lines
        names = set(self.by_class) | set(other.by_class)
        return {n: (self.by_class.get(n, 0) - other.by_class.get(n, 0)) / lines for n in names}


def classify(cmd: str) -> str:
    if "--echo-server" in cmd:
        return ECHO
    for name, marker in CLASSES:
        if marker in cmd:
            return name
    return OTHER


def totals(out: Path) -> dict[str, int]:
    """Instructions in callgrind's output files, summed by process class (each file's ``cmd:``)."""
    found: dict[str, int] = {}
    for path in out.glob("cg.*"):
        cmd, total = "", 0
        with path.open(errors="replace") as f:
            for line in f:
                if line.startswith("cmd:"):
                    cmd = line[4:]
                elif line.startswith(("summary:", "totals:")):
                    total = int(line.split()[1])
                    break
        found[classify(cmd)] = found.get(classify(cmd), 0) + total
    return found


def wait_up(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_LIMIT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(
                f"the server exited with {proc.returncode} under callgrind; its output:\n{log.read_text()[-3000:]}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.5)
    proc.kill()
    sys.exit(f"the server did not start within {START_LIMIT:.0f} s under callgrind")


def group_gone(group: int, limit: float = 120.0) -> None:
    """Until no process of the process group ``group`` is left (at most ``limit`` s)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.5)


def bodies(template: bytes, mode: str, groups: int, size: int, first: int = 0) -> list[tuple[str, bytes]]:
    """(path, body) of every request: ``groups`` batches of ``size`` distinct lines numbered from
    ``first``, or as many single posts (the path's report id filled in later)."""
    prefix, suffix = template.split(PLACEHOLDER.encode())
    lines = [prefix + b"%010d" % n + suffix for n in range(first, first + groups * size)]
    if mode == "batch":
        return [("/api/v1/measurements", b"\n".join(lines[k * size : (k + 1) * size])) for k in range(groups)]
    return [("/report/{rid}", b'{"format":"json","content":' + line + b"}") for line in lines]


def send(url: str, requests: list[tuple[str, bytes]], source: str, echo: bool, connections: int) -> None:
    """Every request, over ``connections`` connections at once: single posts one at a time would
    each be a group commit of one (a DuckDB statement and a journal write per post), which no
    loaded collector does; side by side they are grouped as under load."""
    asyncio.run(_send(url, requests, source, echo, connections))


async def _send(
    url: str, requests: list[tuple[str, bytes]], source: str, echo: bool, connections: int
) -> None:
    transport = httpx.AsyncHTTPTransport(local_address=source)
    limits = httpx.Limits(max_connections=connections)
    async with httpx.AsyncClient(base_url=url, transport=transport, timeout=600, limits=limits) as client:
        rid = "" if echo else (await client.post("/report", json=OPEN_REPORT)).json()["report_id"]
        todo = iter(requests)

        async def worker() -> None:
            for path, body in todo:
                # under callgrind the collector may answer busy (503, 429): retried, as a probe would
                while True:
                    r = await client.post("/echo" if echo else path.format(rid=rid), content=body)
                    if r.status_code not in (429, 503):
                        break
                    await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
                if r.status_code != 200:
                    sys.exit(f"{path}: {r.status_code} {r.text[:500]}")

        await asyncio.gather(*(worker() for _ in range(connections)))


def count(
    tree: Path,
    kind: str,
    requests: list[tuple[str, bytes]],
    lines: int,
    source: str,
    warm_up: list[tuple[str, bytes]],
    connections: int,
    keep: Path | None = None,
) -> Count:
    """One run of ``kind`` (collector or echo) from source tree ``tree`` under callgrind; its
    callgrind files copied to ``keep`` if given (for ``callgrind_annotate``)."""
    with tempfile.TemporaryDirectory(prefix="rw-instructions-") as tmp:
        out = Path(tmp)
        port = free_port()
        server = (
            [str(HERE.parent / "collector_ingest.py"), "--echo-server", str(port)]
            if kind == ECHO
            else ["-m", "reachwatch", "serve", "--db", str(out / "x.duckdb"), "--port", str(port)]
        )
        cmd = [
            "valgrind",
            "--tool=callgrind",
            "--trace-children=yes",
            f"--callgrind-out-file={out}/cg.%p",
            sys.executable,
            *server,
        ]
        env = {**os.environ, "PYTHONPATH": str(tree / "src")}
        log = out / "server.log"
        with log.open("wb") as sink:
            # a session of its own: a benchmark stopped half-way takes the server and its
            # children (batch workers, analysis) down with it, by the group's id
            proc = subprocess.Popen(
                cmd, env=env, stdout=sink, stderr=subprocess.STDOUT, cwd=out, start_new_session=True
            )
        try:
            wait_up(port, proc, log)
            # a warm-up, the same in every run (so it cancels): the batch workers start, callgrind
            # translates the code's paths once
            send(f"http://127.0.0.1:{port}", warm_up, source, kind == ECHO, connections)
            wait_idle(proc.pid, cpu_seconds(proc.pid), limit=START_LIMIT, quiet=IDLE)
            send(f"http://127.0.0.1:{port}", requests, source, kind == ECHO, connections)
            wait_idle(proc.pid, cpu_seconds(proc.pid), limit=START_LIMIT, quiet=IDLE)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=START_LIMIT)
            group_gone(proc.pid)  # its children write their counts as they exit
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            if keep is not None:
                keep.mkdir(parents=True, exist_ok=True)
                for path in out.glob("cg.*"):
                    shutil.copy(path, keep / path.name)
        return Count(lines, totals(out))


def per_line(tree: Path, kind: str, args: argparse.Namespace, template: bytes) -> dict[str, float]:
    few, many = args.batches
    warm_up = bodies(template, args.mode, 1, args.batch, first=10**9)
    runs = [
        count(
            tree,
            kind,
            bodies(template, args.mode, n, args.batch),
            n * args.batch,
            args.source,
            warm_up,
            args.connections if args.mode == "single" else 1,
            args.keep / f"{tree.name}-{kind}-{n}" if args.keep else None,
        )
        for n in (few, many)
    ]
    return runs[1].minus(runs[0])


def show(label: str, figures: dict[str, float]) -> float:
    total = sum(figures.values())
    parts = ", ".join(f"{name} {figures[name] / 1000:,.1f}k" for name in sorted(figures) if figures[name])
    print(f"{label:<28} {total / 1000:9,.1f}k instructions a line ({parts})")
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mode", choices=["batch", "single"], default="batch")
    ap.add_argument("--batches", type=int, nargs=2, default=[2, 8], metavar=("FEW", "MANY"))
    ap.add_argument("--batch", type=int, default=500, help="lines a batch (posts a group, in single mode)")
    ap.add_argument("--size", choices=["small", "median"], default="median")
    ap.add_argument(
        "--source", default="127.0.0.1", help="the load's address (127.0.0.0/8), as in collector_ingest.py"
    )
    ap.add_argument("--connections", type=int, default=32, help="single posts sent side by side")
    ap.add_argument("--against", type=Path, help="another source tree, counted the same way")
    ap.add_argument(
        "--keep",
        type=Path,
        help="copy callgrind's files here, a folder a run (TREE-KIND-BATCHES), for callgrind_annotate",
    )
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped"))  # the servers' clean-up runs
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed: apt-get install valgrind (this benchmark counts with callgrind)")
    few, many = args.batches
    if not 0 < few < many:
        ap.error(f"--batches {few} {many}: give two counts, the first smaller, both above 0")
    if not args.source.startswith("127."):
        ap.error(f"--source {args.source}: not an address of 127.0.0.0/8 (the benchmark stays on loopback)")
    trees = [TREE] + ([args.against.resolve()] if args.against else [])
    for tree in trees:
        if not (tree / "src" / "reachwatch").is_dir():
            ap.error(f"--against {tree}: no src/reachwatch there (give a checkout of reachwatch)")
    with tempfile.TemporaryDirectory() as tmp:
        template = sample(args.size, Path(tmp))[0].read_bytes()
    print(
        f"{args.mode}: {many - few} x {args.batch} {args.size} measurements ({len(template)} bytes) "
        f"counted by callgrind (runs of {many} and {few} subtracted); from {args.source}"
    )
    echo = show("echo (bare FastAPI)", per_line(TREE, ECHO, args, template))
    results = []
    for tree in trees:
        total = show(f"collector {tree.name}", per_line(tree, "collector", args, template))
        print(f"{'':<28} ratio to echo {total / echo:.2f}")
        results.append(total)
    if len(results) == 2:
        print(f"{trees[0].name} / {trees[1].name}: {results[0] / results[1]:.3f}")


if __name__ == "__main__":
    main()
