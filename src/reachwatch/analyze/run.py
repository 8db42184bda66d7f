"""``analyze_store``: re-analyse the stale measurements of a store and refresh their cells.

A row is stale when its verdict was made by other rules (``rules_version``) or its fingerprints
by another set (``fingerprints_version``), both kept per row in ``analysis_state``. Only the
fingerprints are redone when only they changed. Every chunk writes its updates, its state rows
and the keys of the cells it touched (``cells_dirty``) together (DuckDB: one transaction;
ClickHouse: the state last); the ``cells`` table is then refreshed for the dirty cells only.
Interrupted, a run leaves consistent data and the next one resumes; run twice, the second finds
nothing to do.

The main process only moves Arrow batches: it reads a chunk, hands its pieces to the workers as
Arrow IPC bytes, and writes the previous chunk's results while the workers judge this one.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pyarrow as pa
import pyarrow.compute as pc

from reachwatch.analyze.work import (
    IN_COLUMNS,
    Timings,
    analyse_batch,
    analyse_ipc,
    fingerprints_version,
    from_ipc,
    init_worker,
    rules_version,
    to_ipc,
)
from reachwatch.errors import UserError
from reachwatch.fingerprints import Fingerprint, default_dir, load_dir

CHUNK = 50_000


class Backend(Protocol):
    #: the columns of a stale batch that go back to :meth:`write` beside the results
    keep: tuple[str, ...]

    def setup(self) -> None: ...
    def stale(self, rules: str, fps: str, since: dt.date | None, chunk: int) -> Iterator[pa.RecordBatch]: ...
    def write(self, incoming: pa.Table, rules: str, fps: str) -> None: ...
    def refresh(self) -> int: ...
    def close(self) -> None: ...


@dataclass
class AnalyzeStats:
    measurements: int = 0
    reverdicted: int = 0
    cells: int = 0
    workers: int = 1
    timings: Timings = field(default_factory=Timings)
    read: float = 0.0
    write: float = 0.0
    aggregate: float = 0.0
    wall: float = 0.0
    main_cpu: float = 0.0  # this process (its DuckDB threads included)

    @property
    def cpu(self) -> float:
        """CPU seconds of every process of the run (workers from their start)."""
        return self.main_cpu + self.timings.worker_cpu

    def describe(self) -> str:
        t = self.timings
        rate = self.measurements / self.wall if self.wall else 0.0
        per_core = self.measurements / self.cpu if self.cpu else 0.0
        return (
            f"analysed {self.measurements} measurements ({self.reverdicted} re-verdicted), "
            f"refreshed {self.cells} cells in {self.wall:.2f} s ({rate:,.0f}/s with {self.workers} "
            f"process(es); {per_core:,.0f}/s per core of CPU); s: decode {t.decode:.2f}, verdict "
            f"{t.verdict:.2f}, fingerprints {t.fingerprints:.2f}, read {self.read:.2f}, write "
            f"{self.write:.2f}, cells {self.aggregate:.2f}"
        )


def _fingerprints(directory: Path | None) -> list[Fingerprint]:
    if directory is not None:
        if not directory.is_dir():
            raise UserError("no such directory", where=str(directory), fix="give a fingerprint CSV directory")
        return load_dir(directory)
    d = Path(os.environ["REACHWATCH_FINGERPRINTS"]) if os.environ.get("REACHWATCH_FINGERPRINTS") else None
    d = d or default_dir()
    return load_dir(d) if (d / "fingerprints_http.csv").is_file() else []


def open_backend(location: str) -> Backend:
    """The analysis side of a store: a ``*.duckdb`` path or an ``http://HOST:8123/DB`` URL."""
    if location.startswith(("http://", "https://")):
        from reachwatch.analyze.clickhouse_backend import ClickHouseAnalysis

        return ClickHouseAnalysis(location)
    if not os.path.isfile(location):
        raise UserError(
            "no such DuckDB file", where=location, fix="pass the file `reachwatch serve --db` writes"
        )
    from reachwatch.analyze.duckdb_backend import DuckDBAnalysis

    return DuckDBAnalysis(location)


def _pieces(batch: pa.RecordBatch, n: int) -> list[pa.RecordBatch]:
    size = max(1, -(-len(batch) // n))
    return [batch.slice(i, size) for i in range(0, len(batch), size)]


Pending = tuple[pa.RecordBatch, list["Future[tuple[bytes, Timings]]"] | pa.RecordBatch]


def analyze_store(
    location: str, *, fingerprints_dir: Path | None = None, since: dt.date | None = None, workers: int = 0,
    fingerprints: Sequence[Fingerprint] | None = None, chunk: int = CHUNK,
) -> AnalyzeStats:  # fmt: skip
    """Analyse the stale rows of the store at ``location``; ``workers`` 0 means one per core."""
    fps = list(fingerprints) if fingerprints is not None else _fingerprints(fingerprints_dir)
    rules, fpv = rules_version(), fingerprints_version(fps)
    workers = workers or os.cpu_count() or 1
    stats = AnalyzeStats(workers=workers)
    start, cpu0 = time.perf_counter(), time.process_time()
    backend = open_backend(location)
    pool = None
    try:
        if workers > 1:
            ctx = multiprocessing.get_context("forkserver")
            pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=init_worker, initargs=(fps,))
        else:
            init_worker(fps)
        backend.setup()
        inflight: deque[Pending] = deque()

        def flush() -> None:
            batch, work = inflight.popleft()
            if isinstance(work, list):
                parts = []
                for future in work:
                    data, timings = future.result()
                    parts.append(from_ipc(data))
                    stats.timings.add(timings)
                results = pa.Table.from_batches(parts)
            else:
                results = pa.Table.from_batches([work])
            incoming = pa.Table.from_batches([batch.select(list(backend.keep))])
            for name in results.column_names:
                incoming = incoming.append_column(name, results.column(name))
            t = time.perf_counter()
            backend.write(incoming, rules, fpv)
            stats.write += time.perf_counter() - t

        for batch in _timed(backend.stale(rules, fpv, since, chunk), stats):
            stats.measurements += len(batch)
            stats.reverdicted += int(pc.sum(batch.column("need_verdict")).as_py() or 0)
            work = batch.select(list(IN_COLUMNS))
            if pool is None:
                result, timings = analyse_batch(work)
                stats.timings.add(timings)
                inflight.append((batch, result))
                flush()
                continue
            inflight.append(
                (batch, [pool.submit(analyse_ipc, to_ipc(p)) for p in _pieces(work, workers * 2)])
            )
            if len(inflight) > 1:  # the workers judge this chunk while the previous one is written
                flush()
        while inflight:
            flush()
        t = time.perf_counter()
        stats.cells = backend.refresh()
        stats.aggregate = time.perf_counter() - t
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        backend.close()
    stats.wall = time.perf_counter() - start
    stats.main_cpu = time.process_time() - cpu0
    if workers == 1:
        stats.timings.cpu = None  # the work ran here: counted in main_cpu
    return stats


def _timed(batches: Iterator[pa.RecordBatch], stats: AnalyzeStats) -> Iterator[pa.RecordBatch]:
    clock: Callable[[], float] = time.perf_counter
    while True:
        t = clock()
        batch = next(batches, None)
        stats.read += clock() - t
        if batch is None:
            return
        if len(batch):
            yield batch


def analyze_file(
    path: str, *, fingerprints_dir: Path | None = None, since: dt.date | None = None, workers: int = 0,
    fingerprints: Sequence[Fingerprint] | None = None,
) -> AnalyzeStats:  # fmt: skip
    """:func:`analyze_store` of a DuckDB file (kept for callers that only know files)."""
    return analyze_store(
        path, fingerprints_dir=fingerprints_dir, since=since, workers=workers, fingerprints=fingerprints
    )
