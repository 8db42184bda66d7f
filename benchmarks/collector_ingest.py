"""Collector ingest benchmark: single posts/s, batch measurements/s, latency, and the bare-framework rate.

Starts, each in its own process: the collector (DuckDB in a tmp dir; then ClickHouse if installed),
a bare FastAPI endpoint under the same uvicorn settings ("echo"), and the load generator (asyncio,
raw HTTP/1.1 keep-alive, loopback only, bounded by time). Every measurement sent is distinct.

Besides rates (which follow whatever else the machine runs), it prints the CPU time the server
process spent per measurement acknowledged (``cpu/meas``: main process, all threads, from /proc; then
its batch worker processes' and the load generator's) and
what its background analysis process spent meanwhile: on a shared machine these are the steadier
figures. The background analysis yields to ingest, so after each load the benchmark waits until the
server is idle again and prints how long that took and the CPU spent meanwhile (the analysis that
lagged). ``analysed`` is how many of the stored rows had their verdict when the server was stopped.

    .venv/bin/python benchmarks/collector_ingest.py [--seconds 5] [--runs 3] [--concurrency 64] [--batch 500]
        [--size small|median] [--no-clickhouse] [--no-baseline] [--source 127.0.0.2]

``--runs``: each load (echo, single posts, batches) runs this many times in turn, and the run of the
median rate is printed, with every run's rate: on a shared machine one 5 s sample is often a
minute's slow or fast spell (the same tree gave 18,900 and 26,000 batch lines/s minutes apart).

``--source``: the load's own address (any of 127.0.0.0/8). The default, 127.0.0.1, is the
placeholder every probe writes as its ``probe_ip``, which the collector never scrubs; any other
address is scrubbed from every measurement as a real volunteer's is, so its figures include that
cost (docs/collector.md, "Privacy").

``no-journal`` is DuckDB with ``--no-journal`` (each group acknowledged after its own insert), run
in the same process as the baseline of the journal's gain; ``ch+journal`` is ClickHouse with a
journal in front (``--journal-dir``), ``clickhouse`` without.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
from starlette.requests import Request
from starlette.responses import Response

from reachwatch.collector.queue import BATCH

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ooni"
PLACEHOLDER = "__N__"
#: digits of a batch line's number (zero-padded: the load generator rewrites them in place)
NUMBER_WIDTH = 10


#: how the load opens its report (single posts)
OPEN_REPORT = {
    "probe_asn": "AS64501",
    "probe_cc": "PK",
    "software_name": "bench",
    "software_version": "1",
    "test_name": "web_connectivity",
    "test_version": "0.5.0",
    "data_format_version": "0.2.0",
    "format": "json",
}


# -- the bare endpoint -------------------------------------------------------------------------
def echo_server(port: int) -> None:
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> Response:
        body = await request.body()
        return Response(orjson.dumps({"received": len(body)}), media_type="application/json")

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


# -- the load generator ------------------------------------------------------------------------
async def _post(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: bytes, body: bytes | bytearray
) -> int:
    writer.write(
        b"POST %s HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
        % (path, len(body))
    )
    writer.write(body)  # not concatenated: a 1.3 MB batch copied once more in the load generator
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return int(head[9:12])


async def load(
    url: str,
    mode: str,
    template: bytes,
    seconds: float,
    concurrency: int,
    batch: int,
    source: str = "127.0.0.1",
) -> dict[str, float]:
    url = url.removesuffix("/echo")
    host, port = url.split("//")[1].split(":")
    prefix, suffix = template.split(PLACEHOLDER.encode())
    counter = iter(range(10**9))
    path = b"/echo"
    if mode in ("single", "batch"):
        rid = httpx.post(f"{url}/report", json=OPEN_REPORT).json()["report_id"]
        path = f"/report/{rid}".encode() if mode == "single" else b"/api/v1/measurements"
    latencies: list[float] = []
    stats = {"ok": 0, "busy": 0, "other": 0}
    deadline = time.perf_counter() + seconds

    def body() -> tuple[bytes, int]:
        one = prefix + str(next(counter)).encode() + suffix
        return (b'{"format":"json","content":' + one + b"}" if path != b"/echo" else one), 1

    def batch_body() -> Iterator[tuple[bytearray, int]]:
        """One batch body per connection, rewritten in place: each line's number (fixed width) is
        replaced, not the whole body built and joined again (a copy of every line per request,
        ~14 % of the load generator's CPU)."""
        line = prefix + b"0" * NUMBER_WIDTH + suffix
        data = bytearray(b"\n".join([line] * batch))
        starts = range(len(prefix), len(data), len(line) + 1)
        while True:
            for start in starts:
                data[start : start + NUMBER_WIDTH] = b"%0*d" % (NUMBER_WIDTH, next(counter))
            yield data, batch

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, int(port), local_addr=(source, 0))
        bodies: Iterator[tuple[bytes | bytearray, int]] = (
            batch_body() if mode == "batch" else iter(body, None)
        )
        while time.perf_counter() < deadline:
            data, n = next(bodies)
            t0 = time.perf_counter()
            status = await _post(reader, writer, path, data)
            latencies.append(time.perf_counter() - t0)
            key = "ok" if status == 200 else "busy" if status in (429, 503) else "other"
            stats[key] += n
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "rate": stats["ok"] / elapsed,
        "requests_per_s": len(latencies) / elapsed,
        **stats,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
    }


# -- orchestration -----------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(400):
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError("server did not start")


@contextlib.contextmanager
def process(args: list[str], port: int) -> Iterator[tuple[str, int]]:
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_up(port, proc)
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.kill()
        proc.wait()


def cpu_seconds(pid: int) -> tuple[float, float, float]:
    """CPU seconds (user+system) from /proc of: the process; its batch workers (children
    running ``reachwatch.collector.batch``); every other descendant (the analysis). Zeros elsewhere."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def own(p: int) -> float:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / tick

    def children(p: int) -> set[int]:
        found: set[int] = set()
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{p}/task").iterdir():
                found.update(int(c) for c in (task / "children").read_text().split())
        return found

    workers = other = 0.0
    todo = list(children(pid))
    while todo:
        p = todo.pop()
        todo.extend(children(p))
        try:
            batch_worker = b"reachwatch.collector.batch" in Path(f"/proc/{p}/cmdline").read_bytes()
        except OSError:
            continue
        if batch_worker:
            workers += own(p)
        else:
            other += own(p)
    return own(pid), workers, other


def median_run(url: str, pid: int, mode: str, template: Path, args: argparse.Namespace) -> dict[str, Any]:
    """:func:`measured_load` ``--runs`` times in turn: the run of the median rate, with every run's
    rate (``rates``); the analysis' CPU and the catch-up over all runs. One 5 s sample on a shared
    machine is often a minute's slow or fast spell."""
    runs = [measured_load(url, pid, mode, template, args) for _ in range(args.runs)]
    median: dict[str, Any] = dict(sorted(runs, key=lambda r: r["rate"])[len(runs) // 2])
    median["rates"] = sorted(r["rate"] for r in runs)
    # the analysis of one run's rows may run in the next one's catch-up: what it spent, over all runs
    done = sum(max(r["ok"], 1) for r in runs)
    for key in ("child_cpu_us", "after_cpu_us", "after_child_cpu_us"):
        if key in median:
            median[key] = sum(r[key] * max(r["ok"], 1) for r in runs) / done
    if "catch_up_s" in median:
        median["catch_up_s"] = sum(r["catch_up_s"] for r in runs) / len(runs)
    return median


def spread(r: dict[str, Any]) -> str:
    """The runs' rates, lowest to highest, when there were several."""
    rates = r.get("rates", [])
    return "" if len(rates) < 2 else " (runs: " + ", ".join(f"{x:.0f}" for x in rates) + ")"


def measured_load(
    url: str, pid: int, mode: str, template: Path, args: argparse.Namespace
) -> dict[str, float]:
    main0, workers0, kids0 = cpu_seconds(pid)
    result = run_load(url, mode, template, args)
    main1, workers1, kids1 = cpu_seconds(pid)
    done = max(result["ok"], 1)
    result["cpu_us"] = 1e6 * (main1 - main0) / done
    result["worker_cpu_us"] = 1e6 * (workers1 - workers0) / done
    result["child_cpu_us"] = 1e6 * (kids1 - kids0) / done
    result["load_cpu_us"] = 1e6 * result["load_cpu_s"] / done
    if mode != "echo":
        # the analysis yields to ingest, so most of it runs after the load: wait until the server and
        # its analysis process have been idle for a second, and count what they spent meanwhile
        ended = time.perf_counter()
        last = wait_idle(pid, (main1, workers1, kids1))
        result["catch_up_s"] = time.perf_counter() - 1.0 - ended
        result["after_cpu_us"] = 1e6 * (last[0] - main1) / done
        result["after_child_cpu_us"] = 1e6 * (last[2] - kids1) / done
    return result


def wait_idle(
    pid: int, last: tuple[float, float, float], limit: float = 120, quiet: float = 1.0
) -> tuple[float, float, float]:
    """Wait until the server and its children have been idle for ``quiet`` seconds (at most
    ``limit`` s); their CPU seconds then."""
    start = still = time.perf_counter()
    while time.perf_counter() - still < quiet and time.perf_counter() - start < limit:
        time.sleep(0.1)
        now = cpu_seconds(pid)
        if sum(now) - sum(last) > 0.01:  # > 10 % of a core in 0.1 s: still working
            still = time.perf_counter()
        last = now
    return last


def analysed_share(db: Path) -> str:
    import duckdb

    with contextlib.suppress(Exception), duckdb.connect(str(db), read_only=True) as con:
        row = con.execute("SELECT count(*), count(*) FILTER (WHERE analysed) FROM measurements").fetchone()
        if row is not None:
            return f"{row[1]}/{row[0]}"
    return "?"


def run_load(url: str, mode: str, template: Path, args: argparse.Namespace) -> dict[str, float]:
    """The load generator's figures, and its own CPU seconds (``load_cpu_s``)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--load",
            url,
            mode,
            str(template),
            "--seconds",
            str(args.seconds),
            "--concurrency",
            str(args.concurrency if mode != "batch" else 4),
            "--batch",
            str(args.batch),
            "--source",
            args.source,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result: dict[str, float] = json.loads(out.stdout)
    result["load_cpu_s"] = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return result


def sample(size: str, workdir: Path) -> tuple[Path, int]:
    ms = [
        orjson.loads(line)
        for name in ("measurements_real", "measurements_qa_emulated")
        for line in (SHARED / f"{name}.jsonl").read_bytes().splitlines()
        if line.strip()
    ]
    ws = sorted(
        (m for m in ms if m.get("test_name") == "web_connectivity" and isinstance(m.get("input"), str)),
        key=lambda m: len(orjson.dumps(m)),
    )
    m = ws[0] if size == "small" else ws[len(ws) // 2]
    m["input"] = f"https://site{PLACEHOLDER}.example/"
    data = orjson.dumps(m)
    path = workdir / "template.json"
    path.write_bytes(data)
    return path, len(data)


def collector_figures(
    store_args: list[str], template: Path, args: argparse.Namespace
) -> dict[str, dict[str, float]]:
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "reachwatch",
        "serve",
        *store_args,
        "--port",
        str(port),
        "--rate",
        "0",
        "--max-pending",
        "200000",
    ]
    with process(cmd, port) as (url, pid):
        # the batch workers import for ~0.3 s each after the port opens: not in the single posts' figures
        wait_idle(pid, cpu_seconds(pid), limit=10)
        return {
            "single": median_run(url, pid, "single", template, args),
            "batch": median_run(url, pid, "batch", template, args),
        }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument(
        "--runs", type=int, default=3, help="loads of each kind, in turn; the median rate's run is printed"
    )
    ap.add_argument("--concurrency", type=int, default=64)
    # batches as big as the ones reachwatch's own outbox sends
    ap.add_argument("--batch", type=int, default=BATCH)
    ap.add_argument("--size", choices=["small", "median"], default="median")
    ap.add_argument("--no-clickhouse", action="store_true")
    ap.add_argument("--no-baseline", action="store_true", help="skip the DuckDB run without the journal")
    ap.add_argument(
        "--source",
        default="127.0.0.1",
        help="the load's own address (127.0.0.0/8); any but 127.0.0.1 is scrubbed like a volunteer's",
    )
    ap.add_argument("--echo-server", type=int)
    ap.add_argument("--load", nargs=3, metavar=("URL", "MODE", "TEMPLATE"))
    args = ap.parse_args()
    try:
        loopback = ipaddress.ip_address(args.source) in ipaddress.ip_network("127.0.0.0/8")
    except ValueError:
        loopback = False
    if not loopback:
        ap.error(f"--source {args.source}: not an address of 127.0.0.0/8 (the benchmark stays on loopback)")
    if args.echo_server:
        echo_server(args.echo_server)
        return
    if args.load:
        url, mode, template = args.load
        result = asyncio.run(
            load(
                url,
                mode,
                Path(template).read_bytes(),
                args.seconds,
                args.concurrency,
                args.batch,
                args.source,
            )
        )
        print(json.dumps(result))
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        template, size = sample(args.size, work)
        print(
            f"{os.cpu_count()} cores; measurement {size} bytes ({args.size}); {args.seconds}s per run, the median of {args.runs} runs of each load; "
            f"{args.concurrency} connections for single posts, 4 x {args.batch}-line batches; from {args.source}"
            + (" (never scrubbed)" if args.source == "127.0.0.1" else " (scrubbed from every measurement)")
        )
        port = free_port()
        with process([sys.executable, __file__, "--echo-server", str(port)], port) as (url, pid):
            echo = median_run(url + "/echo", pid, "echo", template, args)
        db = work / "bench.duckdb"
        results = {"duckdb": collector_figures(["--db", str(db)], template, args)}
        analysed = analysed_share(db)
        if not args.no_baseline:
            # the same store acknowledging each group after its own insert (the journal's baseline)
            results["no-journal"] = collector_figures(
                ["--db", str(work / "plain.duckdb"), "--no-journal"], template, args
            )
        if not args.no_clickhouse:
            from reachwatch.store import clickhouse_server

            if clickhouse_server.binary() is None:
                print("clickhouse-server not installed: ClickHouse figures skipped")
            else:
                with clickhouse_server.running(work / "clickhouse") as ch:
                    results["clickhouse"] = collector_figures(["--clickhouse", f"{ch}/bench"], template, args)
                    # with a journal in front (one ClickHouse insert, one new part, per ~50 ms)
                    results["ch+journal"] = collector_figures(
                        ["--clickhouse", f"{ch}/bench2", "--journal-dir", str(work / "ch.journal")],
                        template,
                        args,
                    )
        print(
            f"echo (bare FastAPI): {echo['rate']:.0f} posts/s  p50 {echo['p50_ms']:.1f} ms  "
            f"p99 {echo['p99_ms']:.1f} ms  cpu/post {echo['cpu_us']:.0f} us{spread(echo)}"
        )
        for store, r in results.items():
            s, b = r["single"], r["batch"]
            print(
                f"{store:10s} single: {s['rate']:.0f} posts/s  p50 {s['p50_ms']:.1f} ms  p99 {s['p99_ms']:.1f} ms  "
                f"(busy {s['busy']:.0f}, other {s['other']:.0f})  ratio to echo {s['rate'] / echo['rate']:.2f}  "
                f"cpu/meas {s['cpu_us']:.0f} us (+{s['worker_cpu_us']:.0f} batch workers, +{s['child_cpu_us']:.0f} analysis; load generator {s['load_cpu_us']:.0f} us){spread(s)}"
            )
            print(
                f"{store:10s} batch:  {b['rate']:.0f} measurements/s  p50 {b['p50_ms']:.1f} ms  "
                f"p99 {b['p99_ms']:.1f} ms per {args.batch}-line request (busy {b['busy']:.0f}, other {b['other']:.0f})  "
                f"cpu/meas {b['cpu_us']:.0f} us (+{b['worker_cpu_us']:.0f} batch workers, +{b['child_cpu_us']:.0f} analysis; load generator {b['load_cpu_us']:.0f} us){spread(b)}"
            )
            for mode, x in (("single", s), ("batch", b)):
                print(
                    f"{store:10s} after the {mode} load: idle after {x['catch_up_s']:.1f} s (mean of the runs), meanwhile "
                    f"{x['after_cpu_us']:.0f} us/meas in the server + {x['after_child_cpu_us']:.0f} analysis"
                )
        print(f"duckdb rows analysed when the server was stopped: {analysed}")


if __name__ == "__main__":
    main()
