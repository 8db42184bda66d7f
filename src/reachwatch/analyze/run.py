"""``analyze_file``: re-analyse the stale measurements of a DuckDB store and refresh their cells.

A row is stale when its verdict was made by other rules (``rules_version``) or its fingerprints
by another set (``fingerprints_version``), both kept per row in ``analysis_state``. Only the
fingerprints are redone when only they changed. Every chunk commits its updates, its state rows
and the keys of the cells it touched (``cells_dirty``) together; the ``cells`` table is then
refreshed for the dirty cells only. Interrupted, a run leaves consistent data and the next one
resumes; run twice, the second finds nothing to do.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from reachwatch.analyze import cells_table
from reachwatch.analyze.work import (
    Item,
    Result,
    Timings,
    analyse,
    fingerprints_version,
    init_worker,
    rules_version,
)
from reachwatch.errors import UserError
from reachwatch.fingerprints import Fingerprint, default_dir, load_dir
from reachwatch.store.duckdb import ANALYSIS_SCHEMA
from reachwatch.store.schema import TABLE

STATE = "analysis_state"
CHUNK = 20_000
# the verdict columns as the store types them, plus what only analyze writes
_RESULT = pa.schema(
    [
        pa.field("uid", pa.string()),
        *(ANALYSIS_SCHEMA.field(name) for name in ANALYSIS_SCHEMA.names[1:]),
        ANALYSIS_SCHEMA.field("anomaly").with_name("confirmed"),
        pa.field("fingerprint", pa.string()),
    ]
)


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

    def describe(self) -> str:
        t = self.timings
        rate = self.measurements / self.wall if self.wall else 0.0
        return (
            f"analysed {self.measurements} measurements ({self.reverdicted} re-verdicted), "
            f"refreshed {self.cells} cells in {self.wall:.2f} s ({rate:,.0f}/s with {self.workers} "
            f"process(es)); cpu s: decode {t.decode:.2f}, verdict {t.verdict:.2f}, fingerprints "
            f"{t.fingerprints:.2f}; wall s: read {self.read:.2f}, write {self.write:.2f}, "
            f"aggregate {self.aggregate:.2f}"
        )


def _fingerprints(directory: Path | None) -> list[Fingerprint]:
    if directory is not None:
        if not directory.is_dir():
            raise UserError("no such directory", where=str(directory))
        return load_dir(directory)
    d = Path(os.environ["REACHWATCH_FINGERPRINTS"]) if os.environ.get("REACHWATCH_FINGERPRINTS") else None
    d = d or default_dir()
    return load_dir(d) if (d / "fingerprints_http.csv").is_file() else []


def _setup(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {STATE} (measurement_uid VARCHAR PRIMARY KEY, "
        "rules_version VARCHAR NOT NULL, fingerprints_version VARCHAR NOT NULL, fingerprint VARCHAR)"
    ).fetchall()
    cells_table.create(con)


def _stale(
    con: duckdb.DuckDBPyConnection, rules: str, fps: str, since: dt.date | None
) -> Iterator[list[tuple[Item, tuple[str, str, str, dt.date]]]]:
    since_sql = "AND m.measurement_start_day >= ?" if since else ""
    sql = (
        "SELECT m.measurement_uid, m.raw, s.rules_version IS DISTINCT FROM ?, m.blocking, m.accessible, "
        "m.x_technique, m.x_rule, m.anomaly, m.failure, m.probe_cc, m.probe_asn, m.domain, "
        f"m.measurement_start_day FROM {TABLE} m LEFT JOIN {STATE} s USING (measurement_uid) "
        f"WHERE (s.rules_version IS DISTINCT FROM ? OR s.fingerprints_version IS DISTINCT FROM ?) {since_sql}"
    )
    cur = con.cursor()
    res = cur.execute(sql, [rules, rules, fps, *([since] if since else [])])
    while True:
        rows = res.fetchmany(CHUNK)
        if not rows:
            break
        yield [((r[0], bytes(r[1]), *r[2:9]), (r[9], r[10], r[11], r[12])) for r in rows]
    cur.close()


def _write(
    con: duckdb.DuckDBPyConnection, results: Sequence[Result], keys: Sequence[tuple[str, str, str, dt.date]],
    rules: str, fps: str,
) -> None:  # fmt: skip
    columns = list(zip(*results, strict=True))
    incoming = pa.Table.from_arrays(
        [pa.array(c, type=_RESULT.field(i).type) for i, c in enumerate(columns)], schema=_RESULT
    )
    touched = pa.table(
        {
            n: pa.array(c)
            for n, c in zip(
                ("probe_cc", "probe_asn", "domain", "day"), zip(*set(keys), strict=True), strict=True
            )
        }
    )
    con.execute("BEGIN").fetchall()
    try:
        con.register("incoming", incoming)
        con.register("touched", touched)
        con.execute(
            f"UPDATE {TABLE} SET blocking = i.blocking, accessible = i.accessible, x_technique = i.x_technique, "
            "x_rule = i.x_rule, anomaly = i.anomaly, failure = i.failure, confirmed = i.confirmed, analysed = true "
            f"FROM incoming i WHERE {TABLE}.measurement_uid = i.uid AND (NOT {TABLE}.analysed "
            f"OR {TABLE}.blocking IS DISTINCT FROM i.blocking "
            f"OR {TABLE}.accessible IS DISTINCT FROM i.accessible OR {TABLE}.x_technique IS DISTINCT FROM i.x_technique "
            f"OR {TABLE}.x_rule IS DISTINCT FROM i.x_rule OR {TABLE}.anomaly IS DISTINCT FROM i.anomaly "
            f"OR {TABLE}.failure IS DISTINCT FROM i.failure OR {TABLE}.confirmed IS DISTINCT FROM i.confirmed)"
        ).fetchall()
        con.execute(
            f"INSERT OR REPLACE INTO {STATE} SELECT uid, ?, ?, fingerprint FROM incoming", [rules, fps]
        ).fetchall()
        con.execute(f"INSERT INTO {cells_table.DIRTY} SELECT * FROM touched").fetchall()
        con.execute("COMMIT").fetchall()
    except BaseException:
        con.execute("ROLLBACK").fetchall()
        raise
    finally:
        con.unregister("incoming")
        con.unregister("touched")


def _pieces(items: list[Item], n: int) -> list[list[Item]]:
    size = max(1, -(-len(items) // n))
    return [items[i : i + size] for i in range(0, len(items), size)]


def analyze_file(
    path: str, *, fingerprints_dir: Path | None = None, since: dt.date | None = None, workers: int = 0,
    fingerprints: Sequence[Fingerprint] | None = None,
) -> AnalyzeStats:  # fmt: skip
    """Analyse the stale rows of the DuckDB file ``path``; ``workers`` 0 means one per core."""
    fps = list(fingerprints) if fingerprints is not None else _fingerprints(fingerprints_dir)
    rules, fpv = rules_version(), fingerprints_version(fps)
    workers = workers or os.cpu_count() or 1
    stats = AnalyzeStats(workers=workers)
    start = time.perf_counter()
    try:
        con = duckdb.connect(path)
    except duckdb.Error as exc:
        raise UserError(
            f"cannot open DuckDB file: {exc}", where=path, fix="stop the collector first"
        ) from exc
    pool = None
    if workers > 1:
        ctx = multiprocessing.get_context("forkserver")
        pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=init_worker, initargs=(fps,))
    else:
        init_worker(fps)
    try:
        _setup(con)
        t = time.perf_counter()
        for chunk in _stale(con, rules, fpv, since):
            items = [c[0] for c in chunk]
            stats.read += time.perf_counter() - t
            if pool is None:
                results, timings = analyse(items)
                stats.timings.add(timings)
            else:
                results = []
                for part, timings in pool.map(analyse, _pieces(items, workers * 2)):
                    results.extend(part)
                    stats.timings.add(timings)
            stats.measurements += len(items)
            stats.reverdicted += sum(1 for i in items if i[2])
            t = time.perf_counter()
            _write(con, results, [c[1] for c in chunk], rules, fpv)
            stats.write += time.perf_counter() - t
            t = time.perf_counter()
        t = time.perf_counter()
        stats.cells = cells_table.refresh(con)
        stats.aggregate = time.perf_counter() - t
    finally:
        if pool is not None:
            pool.shutdown()
        con.close()
    stats.wall = time.perf_counter() - start
    return stats
