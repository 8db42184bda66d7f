"""``analyze`` on a DuckDB file: stale rows out as Arrow batches, results in as one Arrow table.

``analysis_state`` has no index: the stale query joins it by hash, and each chunk updates the rows
it read by ``rowid`` (stable for the run: the read transaction stays open, so nothing is
vacuumed under it) and appends the state of new rows. One transaction per chunk.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import duckdb
import pyarrow as pa

from reachwatch.analyze import cells_table
from reachwatch.errors import UserError
from reachwatch.store.duckdb import transaction
from reachwatch.store.readers import store_left_journal_or_warn
from reachwatch.store.schema import ANALYSIS_STATE as STATE
from reachwatch.store.schema import TABLE


class DuckDBAnalysis:
    keep: tuple[str, ...] = ("uid", "rid", "srid", "probe_cc", "probe_asn", "domain", "day")

    def __init__(self, path: str) -> None:
        self.where = path
        store_left_journal_or_warn(path)
        try:
            self.con = duckdb.connect(path)
        except duckdb.Error as exc:
            raise UserError(
                f"cannot open DuckDB file: {exc}", where=path, fix="stop the collector first"
            ) from exc
        self._cursor: duckdb.DuckDBPyConnection | None = None

    def setup(self) -> None:
        has = self.con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND schema_name = 'main'", [TABLE]
        ).fetchall()[0][0]
        if not has:
            raise UserError("no measurements table: not a reachwatch store", where=self.where)
        self.con.execute(
            f"CREATE TABLE IF NOT EXISTS {STATE} (measurement_uid VARCHAR NOT NULL, "
            "rules_version VARCHAR NOT NULL, fingerprints_version VARCHAR NOT NULL, fingerprint VARCHAR)"
        ).fetchall()
        cells_table.create(self.con)

    def stale(self, rules: str, fps: str, since: dt.date | None, chunk: int) -> Iterator[pa.RecordBatch]:
        """The stale rows: ``uid, rid, srid, need_verdict``, the work columns, the cell keys."""
        since_sql = "AND m.measurement_start_day >= ?" if since else ""
        sql = (
            "SELECT m.measurement_uid AS uid, m.rowid AS rid, s.rowid AS srid, "
            "s.rules_version IS DISTINCT FROM ? AS need_verdict, m.raw, m.blocking, m.accessible, "
            "m.x_technique, m.x_rule, m.anomaly, m.failure, m.confirmed, m.analysed, "
            "m.probe_cc, m.probe_asn, m.domain, m.measurement_start_day AS day "
            f"FROM {TABLE} m LEFT JOIN {STATE} s USING (measurement_uid) "
            f"WHERE (s.rules_version IS DISTINCT FROM ? OR s.fingerprints_version IS DISTINCT FROM ?) {since_sql}"
        )
        self._cursor = self.con.cursor()
        reader = self._cursor.sql(sql, params=[rules, rules, fps, *([since] if since else [])])
        try:
            yield from reader.to_arrow_reader(chunk)
        finally:
            self._cursor.close()
            self._cursor = None

    def write(self, incoming: pa.Table, rules: str, fps: str) -> None:
        """Verdict columns of the changed rows, state rows and dirty cell keys, in one transaction."""
        con = self.con
        m = TABLE
        with transaction(con, incoming=incoming):
            con.execute(
                f"UPDATE {m} SET blocking = i.blocking, accessible = i.accessible, x_technique = i.x_technique, "
                "x_rule = i.x_rule, anomaly = i.anomaly, failure = i.failure, confirmed = i.confirmed, "
                f"analysed = true FROM incoming i WHERE {m}.rowid = i.rid AND i.changed "
                f"AND {m}.measurement_uid = i.uid"
            ).fetchall()
            con.execute(
                f"UPDATE {STATE} SET rules_version = ?, fingerprints_version = ?, fingerprint = i.fingerprint "
                f"FROM incoming i WHERE {STATE}.rowid = i.srid AND {STATE}.measurement_uid = i.uid",
                [rules, fps],
            ).fetchall()
            con.execute(
                f"INSERT INTO {STATE} SELECT uid, ?, ?, fingerprint FROM incoming WHERE srid IS NULL",
                [rules, fps],
            ).fetchall()
            con.execute(
                f"INSERT INTO {cells_table.DIRTY} SELECT DISTINCT probe_cc, probe_asn, domain, day FROM incoming"
            ).fetchall()

    def refresh(self) -> int:
        return cells_table.refresh(self.con)

    def close(self) -> None:
        self.con.close()
