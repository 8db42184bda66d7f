"""The stored ``cells`` table: one row per (probe_cc, probe_asn, domain, day), refreshed for the
cells whose measurements were (re-)analysed (``cells_dirty``), by the SQL aggregation."""

from __future__ import annotations

import duckdb
import orjson
import pyarrow as pa

from reachwatch.aggregate.sql import query_cells
from reachwatch.store.duckdb import transaction
from reachwatch.store.readers import DuckDBReader
from reachwatch.store.schema import TABLE

CELLS = "cells"
DIRTY = "cells_dirty"
_KEYS = "probe_cc VARCHAR NOT NULL, probe_asn VARCHAR NOT NULL, domain VARCHAR NOT NULL, day DATE NOT NULL"
_FIELDS = (
    ("state", pa.string(), "VARCHAR"),
    ("rule_id", pa.string(), "VARCHAR"),
    ("n_measurements", pa.int64(), "BIGINT"),
    ("n_probes", pa.int64(), "BIGINT"),
    ("blocked_share", pa.float64(), "DOUBLE"),
    ("blocked_low", pa.float64(), "DOUBLE"),
    ("blocked_high", pa.float64(), "DOUBLE"),
    ("dominant_technique", pa.string(), "VARCHAR"),
    ("first_seen", pa.string(), "VARCHAR"),
    ("last_seen", pa.string(), "VARCHAR"),
    ("witnesses", pa.string(), "VARCHAR"),  # a JSON list of measurement uids
)
_MATCH = "d.probe_cc = {t}.probe_cc AND d.probe_asn = {t}.probe_asn AND d.domain = {t}.domain AND d.day = {t}.{day}"


def create(con: duckdb.DuckDBPyConnection) -> None:
    cols = ", ".join(f"{name} {sql}" for name, _, sql in _FIELDS)
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {CELLS} ({_KEYS}, {cols}, PRIMARY KEY (probe_cc, probe_asn, domain, day))"
    ).fetchall()
    con.execute(f"CREATE TABLE IF NOT EXISTS {DIRTY} ({_KEYS})").fetchall()


def refresh(con: duckdb.DuckDBPyConnection) -> int:
    """Recompute the dirty cells; returns how many cells were written."""
    in_dirty = f"EXISTS (SELECT 1 FROM {DIRTY} d WHERE {_MATCH.format(t=TABLE, day='measurement_start_day')})"
    cells = query_cells(DuckDBReader(con), restrict=in_dirty)
    recs = [c.as_dict() for c in cells]
    data = {k: pa.array([r[k] for r in recs]) for k in ("probe_cc", "probe_asn", "domain")}
    data["day"] = pa.array([r["day"] for r in recs], pa.string())
    for name, typ, _ in _FIELDS:
        values = [orjson.dumps(r[name]).decode() if name == "witnesses" else r[name] for r in recs]
        data[name] = pa.array(values, typ)
    fresh = pa.table(data)
    with transaction(con, fresh=fresh):
        con.execute(
            f"DELETE FROM {CELLS} WHERE EXISTS (SELECT 1 FROM {DIRTY} d WHERE {_MATCH.format(t=CELLS, day='day')})"
        ).fetchall()
        if recs:
            con.execute(
                f"INSERT INTO {CELLS} SELECT probe_cc, probe_asn, domain, CAST(day AS DATE), * EXCLUDE (probe_cc, probe_asn, domain, day) FROM fresh"
            ).fetchall()
        con.execute(f"DELETE FROM {DIRTY}").fetchall()
    return len(recs)
