"""``analyze`` on ClickHouse (HTTP interface; SQL valid on 18.16 and current releases).

- ``analysis_state``: ReplacingMergeTree by ``measurement_uid`` (the latest ``seq`` wins), read
  with ``FINAL``; the stale rows are streamed as JSONEachRow from one SELECT.
- Verdict columns: per chunk, the changed rows go to a Join-engine table and one mutation
  (``ALTER TABLE ... UPDATE col = joinGet(...)``) applies them; the chunk's state rows and dirty
  cell keys are inserted only once the mutation is done, so an interrupted run redoes that chunk.
- ``cells``: ReplacingMergeTree by key, read with ``FINAL``: a refresh inserts newer versions of the
  dirty cells, then empties ``cells_dirty``.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pyarrow as pa

from reachwatch.aggregate.sql import query_cells
from reachwatch.analyze.work import IN_COLUMNS
from reachwatch.errors import UserError
from reachwatch.store.clickhouse_values import as_clickhouse, literal
from reachwatch.store.readers import ClickHouseReader
from reachwatch.store.schema import ANALYSIS_STATE as STATE
from reachwatch.store.schema import ARROW_SCHEMA, TABLE

CELLS = "cells"
DIRTY = "cells_dirty"
_KEYS = ("probe_cc", "probe_asn", "domain", "day")
_VERDICT = ("blocking", "accessible", "x_technique", "x_rule", "anomaly", "failure", "confirmed")
_STALE_SCHEMA = pa.schema(
    [
        ("uid", pa.string()),
        ("need_verdict", pa.bool_()),
        *(ARROW_SCHEMA.field(n) for n in ("raw", *_VERDICT, "analysed", "probe_cc", "probe_asn", "domain")),
        ("day", pa.string()),
    ]
)
_CELL_COLUMNS = (
    ("state", "String"),
    ("rule_id", "String"),
    ("n_measurements", "Int64"),
    ("n_probes", "Int64"),
    ("blocked_share", "Nullable(Float64)"),
    ("blocked_low", "Nullable(Float64)"),
    ("blocked_high", "Nullable(Float64)"),
    ("dominant_technique", "Nullable(String)"),
    ("first_seen", "Nullable(String)"),
    ("last_seen", "Nullable(String)"),
    ("witnesses", "String"),  # a JSON list of measurement uids
)


class ClickHouseAnalysis:
    keep: tuple[str, ...] = ("uid", "probe_cc", "probe_asn", "domain", "day")

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        self.db = parts.path.strip("/") or "default"
        if not self.db.replace("_", "").isalnum():
            raise UserError(f"bad database name {self.db!r}", where=url, fix="use http://HOST:8123/DBNAME")
        self.url = url
        self._client = httpx.Client(base_url=f"{parts.scheme}://{parts.netloc}/", timeout=600.0)
        self._seq = time.time_ns()
        # joinGet resolves its table in the default database when a mutation runs in the
        # background (18.16): the per-chunk Join table lives there, named after this run
        self._join = f"analysis_join_{self.db}_{secrets.token_hex(4)}"

    # -- HTTP ------------------------------------------------------------------------------------
    def _params(self) -> dict[str, str]:
        return {"database": self.db, "output_format_json_quote_64bit_integers": "0"}

    def _query(self, sql: str, data: bytes | None = None, *, database: str | None = None) -> bytes:
        params = self._params()
        if database is not None:
            params["database"] = database
        try:
            if data is None:
                resp = self._client.post("", params=params, content=sql.encode())
            else:
                resp = self._client.post("", params={**params, "query": sql}, content=data)
        except httpx.HTTPError as exc:
            raise UserError(f"cannot reach ClickHouse: {exc}", where=self.url) from exc
        if resp.status_code != 200:
            raise UserError(f"ClickHouse error {resp.status_code}: {resp.text[:300]}", where=self.url)
        return resp.content

    def _insert(self, table: str, rows: list[dict[str, Any]]) -> None:
        if rows:
            self._query(f"INSERT INTO {table} FORMAT JSONEachRow", b"\n".join(map(orjson.dumps, rows)))

    # -- Backend ---------------------------------------------------------------------------------
    def setup(self) -> None:
        found = self._query(f"EXISTS TABLE {TABLE}").strip()
        if found != b"1":
            raise UserError(
                f"no {TABLE} table in database {self.db!r}: not a reachwatch store", where=self.url
            )
        self._query(
            f"CREATE TABLE IF NOT EXISTS {STATE} (measurement_uid String, rules_version String, "
            "fingerprints_version String, fingerprint Nullable(String), seq UInt64) "
            "ENGINE = ReplacingMergeTree(seq) ORDER BY measurement_uid"
        )
        keys = "probe_cc String, probe_asn String, domain String, day Date"
        cols = ", ".join(f"{name} {typ}" for name, typ in _CELL_COLUMNS)
        self._query(
            f"CREATE TABLE IF NOT EXISTS {CELLS} ({keys}, {cols}, seq UInt64) "
            "ENGINE = ReplacingMergeTree(seq) ORDER BY (probe_cc, probe_asn, domain, day)"
        )
        self._query(f"CREATE TABLE IF NOT EXISTS {DIRTY} ({keys}) ENGINE = MergeTree() ORDER BY tuple()")

    def stale(self, rules: str, fps: str, since: dt.date | None, chunk: int) -> Iterator[pa.RecordBatch]:
        since_sql = f" AND measurement_start_day >= {literal(since)}" if since else ""
        sql = (
            f"SELECT measurement_uid AS uid, s_rules != {literal(rules)} AS need_verdict, raw, blocking, "
            "accessible, x_technique, x_rule, anomaly, failure, confirmed, analysed, probe_cc, probe_asn, "
            f"domain, measurement_start_day AS day FROM {TABLE} ANY LEFT JOIN (SELECT measurement_uid, "
            f"rules_version AS s_rules, fingerprints_version AS s_fps FROM {STATE} FINAL) USING measurement_uid "
            f"WHERE (s_rules != {literal(rules)} OR s_fps != {literal(fps)}){since_sql} FORMAT JSONEachRow"
        )
        rows: list[dict[str, Any]] = []
        try:
            with self._client.stream("POST", "", params=self._params(), content=sql.encode()) as resp:
                if resp.status_code != 200:
                    resp.read()
                    raise UserError(f"ClickHouse error {resp.status_code}: {resp.text[:300]}", where=self.url)
                for line in resp.iter_lines():
                    if not line:
                        continue
                    rows.append(orjson.loads(line))
                    if len(rows) == chunk:
                        yield _batch(rows)
                        rows = []
        except httpx.HTTPError as exc:
            raise UserError(f"cannot reach ClickHouse: {exc}", where=self.url) from exc
        if rows:
            yield _batch(rows)

    def write(self, incoming: pa.Table, rules: str, fps: str) -> None:
        changed = incoming.filter(incoming.column("changed"))
        if changed.num_rows:
            join = f"default.{self._join}"
            self._query(
                f"CREATE TABLE {join} (measurement_uid String, blocking Nullable(String), "
                "accessible Nullable(UInt8), x_technique Nullable(String), x_rule Nullable(String), "
                "anomaly UInt8, failure UInt8, confirmed UInt8) ENGINE = Join(ANY, LEFT, measurement_uid)"
            )
            try:
                cols = {name: changed.column(name).to_pylist() for name in ("uid", *_VERDICT)}
                self._insert(
                    join,
                    [
                        {
                            "measurement_uid": uid,
                            **{n: as_clickhouse(v) for n, v in zip(_VERDICT, vs, strict=True)},
                        }
                        for uid, *vs in zip(*cols.values(), strict=True)
                    ],
                )
                sets = ", ".join(f"{n} = joinGet('{self._join}', '{n}', measurement_uid)" for n in _VERDICT)
                self._query(
                    f"ALTER TABLE {self.db}.{TABLE} UPDATE {sets}, analysed = 1 "
                    f"WHERE measurement_uid IN (SELECT measurement_uid FROM {join})",
                    database="default",
                )
                self._wait_mutations()
            finally:
                # never under a mutation still reading it: joinGet would fail there, and on 18.16 a
                # failed mutation is retried for ever (after a timeout, the table stays)
                if not self._unfinished(self._join):
                    self._query(f"DROP TABLE IF EXISTS {join}")
        self._seq += 1
        uids, names = incoming.column("uid").to_pylist(), incoming.column("fingerprint").to_pylist()
        self._insert(
            STATE,
            [
                {"measurement_uid": u, "rules_version": rules, "fingerprints_version": fps, "fingerprint": f,
                 "seq": self._seq}
                for u, f in zip(uids, names, strict=True)
            ],
        )  # fmt: skip
        keys = {tuple(k) for k in zip(*(incoming.column(n).to_pylist() for n in _KEYS), strict=True)}
        self._insert(DIRTY, [dict(zip(_KEYS, k, strict=True)) for k in sorted(keys)])

    def _unfinished(self, marker: str) -> int:
        """How many mutations of the table that name ``marker`` are still to do."""
        sql = (
            f"SELECT count() FROM system.mutations WHERE database = {literal(self.db)} AND table = "
            f"{literal(TABLE)} AND is_done = 0 AND position(command, {literal(marker)}) > 0 FORMAT JSONCompact"
        )
        return int(orjson.loads(self._query(sql))["data"][0][0])

    def _wait_mutations(self, timeout: float = 3600.0) -> None:
        sql = (
            f"SELECT count() FROM system.mutations WHERE database = {literal(self.db)} "
            f"AND table = {literal(TABLE)} AND is_done = 0 FORMAT JSONCompact"
        )
        deadline = time.monotonic() + timeout
        while orjson.loads(self._query(sql))["data"][0][0]:
            if time.monotonic() > deadline:
                raise UserError(
                    f"the update of {TABLE} did not finish in {timeout:.0f} s", where=self.url,
                    fix="see system.mutations and the server's error log, then run analyze again",
                )  # fmt: skip
            time.sleep(0.05)

    def refresh(self) -> int:
        reader = ClickHouseReader(self.url)
        try:
            restrict = (
                f"(probe_cc, probe_asn, domain, measurement_start_day) IN "
                f"(SELECT probe_cc, probe_asn, domain, day FROM {DIRTY})"
            )
            cells = query_cells(reader, restrict=restrict)
        finally:
            reader.close()
        self._seq += 1
        rows = []
        for cell in cells:
            rec = cell.as_dict()
            row = {k: rec[k] for k in _KEYS}
            row.update({name: rec[name] for name, _ in _CELL_COLUMNS})
            row["witnesses"] = orjson.dumps(rec["witnesses"]).decode()
            row["seq"] = self._seq
            rows.append(row)
        self._insert(CELLS, rows)
        self._query(f"TRUNCATE TABLE {DIRTY}")
        return len(rows)

    def close(self) -> None:
        self._client.close()


def _batch(rows: list[dict[str, Any]]) -> pa.RecordBatch:
    data: dict[str, list[Any]] = {name: [] for name in _STALE_SCHEMA.names}
    for r in rows:
        for name in _STALE_SCHEMA.names:
            data[name].append(r[name])
    data["raw"] = [base64.b64decode(v) for v in data["raw"]]
    for name in ("need_verdict", "accessible", "anomaly", "failure", "confirmed", "analysed"):
        data[name] = [None if v is None else bool(v) for v in data[name]]
    return pa.RecordBatch.from_arrays(
        [pa.array(data[f.name], f.type) for f in _STALE_SCHEMA], schema=_STALE_SCHEMA
    )


assert set(IN_COLUMNS) <= set(_STALE_SCHEMA.names)
