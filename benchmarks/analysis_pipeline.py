"""Measurements to findings at scale: load, analyze, aggregate (prints only; tests never time).

    .venv/bin/python benchmarks/analysis_pipeline.py [--n 1000000] [--workers 0] [--db FILE]
        [--measurements lab/measurements.jsonl] [--fingerprints DIR]

Measurements are a few hundred lab-like templates (tests/verdict/verdict_builders.py, or the
lines of ``--measurements``) varied over inputs, networks, probes and days, stored with no verdict
(as a collector that analyses later would) in a fresh DuckDB file.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from reachwatch.aggregate.sql import query_cells
from reachwatch.analyze import AnalyzeStats, analyze_file
from reachwatch.fingerprints import Fingerprint, load_dir
from reachwatch.store.compression import compress
from reachwatch.store.duckdb import DuckDBStore
from reachwatch.store.readers import DuckDBReader
from reachwatch.store.schema import Row

ROOT = Path(__file__).resolve().parents[1]
SHARED_FPS = ROOT.parent / "shared" / "data" / "fingerprints"


def templates(path: Path | None) -> list[dict[str, Any]]:
    if path is not None:
        return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    sys.path.insert(0, str(ROOT / "tests" / "verdict"))
    import verdict_builders as vb

    kinds: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
        ("https", {}, {}),
        ("http", {}, {}),
        ("https", {}, {}),
        ("http", {"body": vb.BLOCKPAGE, "code": 403}, {}),
        ("https", {"addrs": (vb.OTHER_IP,), "tcp_failure": "connection_refused"}, {}),
        ("https", {"tls_failure": "connection_reset"}, {}),
        ("https", {"tcp_failure": "generic_timeout_error"}, {}),
        ("https", {"dns_failure": "dns_nxdomain_error"}, {}),
        ("https", {"tcp_failure": "connection_refused"}, {"tcp_failure": "connection_refused"}),
    ]
    out = []
    for d in range(40):
        for scheme, probe, ctrl in kinds:
            out.append(vb.single(f"{scheme}://site{d}.example/", probe, ctrl))
    return out


def rows(n: int, base: list[dict[str, Any]], chunk: int) -> Any:
    networks = [("PK", f"AS{64500 + i}") for i in range(8)] + [("IR", f"AS{58200 + i}") for i in range(8)]
    networks += [("RU", f"AS{12300 + i}") for i in range(4)]
    start = dt.datetime(2024, 3, 1)
    batch: list[Row] = []
    for i in range(n):
        m = base[i % len(base)]
        cc, asn = networks[(i // len(base)) % len(networks)]
        when = start + dt.timedelta(days=(i * 7919) % 30, seconds=i % 86_400)
        probe = f"{asn}-{(i * 31) % 40}"
        m = dict(
            m, probe_cc=cc, probe_asn=asn, measurement_start_time=f"{when:%Y-%m-%d %H:%M:%S}", report_id=probe
        )
        uid = f"{when:%Y%m%d%H%M%S}.000000_{cc}_webconnectivity_{i:016x}"
        url = str(m.get("input") or "")
        batch.append(Row(uid, hashlib.blake2b(uid.encode(), digest_size=16).hexdigest(), probe, url,
                         url.split("/")[2] if "//" in url else "", cc, asn, f"Net {asn}", True, None, None,
                         when, when.date(), "web_connectivity", None, None, None, None, False, False, True,
                         None, hashlib.blake2b(probe.encode(), digest_size=8).hexdigest(),
                         compress(orjson.dumps(m))))  # fmt: skip
        if len(batch) == chunk:
            yield batch
            batch = []
    if batch:
        yield batch


async def load(path: str, n: int, base: list[dict[str, Any]]) -> tuple[float, float]:
    store = DuckDBStore(path)
    await store.open()
    build = insert = 0.0
    t = time.perf_counter()
    for batch in rows(n, base, 50_000):
        build += time.perf_counter() - t
        t = time.perf_counter()
        await store.insert(batch)
        insert += time.perf_counter() - t
        t = time.perf_counter()
    await store.close()
    return build, insert


def fingerprints(directory: Path | None) -> list[Fingerprint]:
    d = directory or (SHARED_FPS if (SHARED_FPS / "fingerprints_http.csv").is_file() else None)
    extra = Fingerprint(
        name="local.bench", location="body", pattern_type="contains", pattern="Access Denied By Order"
    )
    return [*(load_dir(d) if d else []), extra]


def report(label: str, s: AnalyzeStats, cores: int) -> None:
    n, t = s.measurements, s.timings
    print(f"\n{label}: n = {n:,} in {s.wall:.2f} s wall; cpu {s.cpu:.2f} s "
          f"(main {s.main_cpu:.2f} s, workers {t.worker_cpu:.2f} s)")  # fmt: skip
    if not n:
        return
    print(f"  measurements/s per core: {n / s.cpu:,.0f} by CPU (all processes), "
          f"{n / (s.wall * cores):,.0f} by wall x {cores} cores")  # fmt: skip
    us = 1e6 / n
    print(f"  us per measurement: workers (cpu) decode {t.decode * us:.1f}, verdict {t.verdict * us:.1f}, "
          f"fingerprints {t.fingerprints * us:.1f}, Arrow in/out {t.batch * us:.1f}; main (wall) read "
          f"{s.read * us:.1f}, write {s.write * us:.1f}, cells refresh {s.aggregate * us:.1f} ({s.cells:,} cells)")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, default=0, help="analyze processes (0: one per core)")
    ap.add_argument("--db", type=Path, help="DuckDB file to create (default: a temporary one)")
    ap.add_argument("--measurements", type=Path, help="lab measurements.jsonl to use as templates")
    ap.add_argument("--fingerprints", type=Path)
    args = ap.parse_args()
    workers = args.workers or os.cpu_count() or 1
    tmp = tempfile.TemporaryDirectory()
    path = str(args.db or Path(tmp.name) / "bench.duckdb")
    if os.path.exists(path):
        sys.exit(f"{path} exists: give a new file")
    base, fps = templates(args.measurements), fingerprints(args.fingerprints)
    print(f"{args.n:,} measurements from {len(base)} templates; {len(fps)} fingerprints; {workers} worker(s)")

    build, insert = asyncio.run(load(path, args.n, base))
    print(f"generate {build:.1f} s; load into DuckDB {insert:.1f} s ({args.n / insert:,.0f}/s); "
          f"file {os.path.getsize(path) / 1e6:.0f} MB")  # fmt: skip

    cores = len(os.sched_getaffinity(0))
    print(f"analyze: {workers} worker process(es) on {cores} core(s); rates per core count every process's CPU "
          "(the main process's reads and writes, its DuckDB threads, the workers from their start)")  # fmt: skip
    for label, kw in (("analyze (all stale)", {}), ("analyze again (nothing stale)", {}),
                      ("analyze, fingerprint set changed", {"drop": True})):  # fmt: skip
        s = analyze_file(path, fingerprints=fps[:-1] if kw else fps, workers=workers)
        report(label, s, cores)
    reader = DuckDBReader.open(path)
    t0 = time.perf_counter()
    cells = query_cells(reader)
    t1 = time.perf_counter()
    by_isp = query_cells(reader, ("probe_cc", "probe_asn", "domain"))
    t2 = time.perf_counter()
    reader.close()
    print(f"\naggregate per (cc, asn, domain, day): {len(cells):,} cells in {t1 - t0:.2f} s; "
          f"per (cc, asn, domain): {len(by_isp):,} in {t2 - t1:.2f} s")  # fmt: skip
    tmp.cleanup()


if __name__ == "__main__":
    main()
