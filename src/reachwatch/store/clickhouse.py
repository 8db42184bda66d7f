"""ClickHouse backend over its HTTP interface (httpx), SQL valid on 18.16 and current releases.

MergeTree partitioned by day, ordered by (probe_cc, probe_asn, domain); JSONEachRow inserts;
the raw measurement is zstd then base64 in a String (18.16 has no column codecs). The collector
judges each measurement before inserting it (:attr:`ClickHouseStore.verdicts_at_ingest`): an update
is a mutation, which rewrites whole parts. Rows stored before their verdict (``analysed = 0``, by a
version before that) are :meth:`ClickHouseStore.unanalysed`, the backlog the collector's analysis
catches up on at start; :meth:`ClickHouseStore.update_analysis` writes verdicts back as one
mutation statement per batch (that, and a re-analysis).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import itertools
import logging
import operator
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Collection, Sequence
from typing import Any

import httpx
import orjson

from reachwatch.errors import UserError
from reachwatch.store import query
from reachwatch.store.clickhouse_url import Location
from reachwatch.store.clickhouse_values import (
    EPOCH,
    chunks,
    day_of,
    decode,
    encode,
    literal,
    render,
    time_of,
)
from reachwatch.store.clickhouse_verdicts import Mutations
from reachwatch.store.query import Filters, ListOrder
from reachwatch.store.schema import (
    ANALYSIS_STATE,
    COLUMNS,
    IDENTITY,
    META_TABLE,
    TABLE,
    Analysis,
    Row,
    RowColumns,
    identity_of,
)

log = logging.getLogger(__name__)

_JSON_SETTINGS = {"output_format_json_quote_64bit_integers": "0"}
#: Columns added after the first release: added to older tables on open (18.16 has no
#: ``ADD COLUMN IF NOT EXISTS``), with their DEFAULT for the rows already there.
_ADDED = ("analysed",)


#: The days that narrow the duplicate check at most: a batch spanning more reads every day's hashes
NARROWING_DAYS = 1_000


#: The start of the query id of every insert into the measurements table, then the database's name
INSERT_ID = "reachwatch-insert-"
#: Days (partitions) one insert writes at most: ClickHouse refuses more than 100 by default
DAYS_PER_INSERT = 100
#: uids a re-analysis reads ahead in one query (~6 MB of them)
UID_CHUNK = 100_000
#: Seconds :meth:`ClickHouseStore.open` waits at most for inserts still running from before it
EARLIER_INSERTS_WAIT = 60.0

#: Seconds a collector that stored a new database's secret waits before reading back the one
#: all use (:meth:`ClickHouseStore.secret`); once per database
SECRET_SETTLE = 1.0


class ClickHouseStore:
    def __init__(self, url: str) -> None:
        where = Location.parse(url)
        self.db, self.base, self.shown = where.db, where.base, where.shown
        self._client = httpx.AsyncClient(base_url=self.base, timeout=60.0, auth=where.auth)
        #: every insert's query id starts so (:meth:`_wait_for_earlier_inserts`)
        self._insert_prefix = f"{INSERT_ID}{self.db}-"
        self._mutations = Mutations(self.db, self._query, self._rows)

    async def _query(
        self, sql: str, *, data: bytes | None = None, database: bool = True, query_id: str | None = None
    ) -> bytes:
        params = dict(_JSON_SETTINGS)
        if database:
            params["database"] = self.db
        if query_id is not None:
            params["query_id"] = query_id
        if data is None:
            resp = await self._client.post("", params=params, content=sql.encode())
        else:
            params["query"] = sql
            resp = await self._client.post("", params=params, content=data)
        if resp.status_code != 200:
            raise RuntimeError(f"ClickHouse error {resp.status_code}: {resp.text[:500]}")
        return resp.content

    async def _rows(self, sql: str) -> list[dict[str, Any]]:
        body = await self._query(sql + " FORMAT JSONEachRow")
        return [orjson.loads(line) for line in body.splitlines() if line]

    async def check(self) -> None:
        try:
            await self._query(f"CREATE DATABASE IF NOT EXISTS {self.db}", database=False)
        except httpx.HTTPError as exc:
            raise UserError(f"cannot reach ClickHouse: {exc}", where=self.shown) from exc
        except RuntimeError as exc:  # its answer: a wrong user or password, no right to create it
            raise UserError(
                f"ClickHouse refused to open the database: {exc}",
                where=f"{self.shown}{self.db}",
                fix="check the user and password in the URL, and that the user may create the database",
            ) from exc

    async def open(self) -> None:
        await self.check()
        cols = ", ".join(f"{c.name} {c.clickhouse}" for c in COLUMNS)
        await self._query(
            f"CREATE TABLE IF NOT EXISTS {TABLE} ({cols}) ENGINE = MergeTree() "
            "PARTITION BY measurement_start_day "
            "ORDER BY (probe_cc, probe_asn, domain, measurement_uid)"
        )
        await self._query(
            f"CREATE TABLE IF NOT EXISTS {META_TABLE} (key String, value String) ENGINE = TinyLog"
        )
        await self._add_missing_columns()
        await self._wait_for_earlier_inserts()
        await self._mutations.drop_left()

    async def _add_missing_columns(self) -> None:
        have = await self._rows(
            f"SELECT name FROM system.columns WHERE database = {literal(self.db)} AND table = {literal(TABLE)}"
        )
        names = {r["name"] for r in have}
        for c in COLUMNS:
            if c.name in _ADDED and c.name not in names:
                await self._query(f"ALTER TABLE {TABLE} ADD COLUMN {c.name} {c.clickhouse}")

    async def close(self) -> None:
        await self._client.aclose()

    async def secret(self) -> bytes:
        """The secret every collector of this database shares (report ids, content hashes): the
        smallest stored. Collectors started together on a new database may each find none and
        store one, each with the time it was stored: whoever reads a secret stored less than
        :data:`SECRET_SETTLE` ago (its own, or another's) waits until it is that old and reads
        again, by when every collector that found none has stored its own, so all read the same."""
        found = await self._secrets()
        for attempt in range(3):
            if found:
                break
            try:
                # with the identity hash, in one statement: a secret without one is an older store's
                await self._query(
                    f"INSERT INTO {META_TABLE} VALUES ('secret', '{secrets.token_hex(32)}@{time.time():.3f}'), "
                    f"('identity', {literal(IDENTITY)})"
                )
            except RuntimeError:
                # the table (TinyLog) takes one writer at a time: another collector storing its own
                # at this moment fails ours, and its secret is read back below
                if attempt == 2:
                    raise
            found = await self._secrets()
        for _ in range(3):  # 3 at most: a clock set back meanwhile does not hold it for ever
            young = max((at for _, at in found), default=0.0) + SECRET_SETTLE - time.time()
            if young <= 0:
                break
            await asyncio.sleep(min(young, SECRET_SETTLE))
            found = await self._secrets()
        if not found:
            raise RuntimeError(f"ClickHouse did not keep the collector's secret in {self.db}.{META_TABLE}")
        return bytes.fromhex(min(found)[0])

    async def _secrets(self) -> list[tuple[str, float]]:
        """(hex, when stored: 0 if not recorded) of every secret stored."""
        rows = await self._meta_rows(f"SELECT value FROM {META_TABLE} WHERE key = 'secret'")
        out = []
        for r in rows:
            hexa, _, at = r["value"].partition("@")
            out.append((hexa, float(at) if at else 0.0))
        return out

    async def _meta_rows(self, sql: str) -> list[dict[str, Any]]:
        """``sql`` on the meta table (TinyLog), read again on an error: a read while the first rows
        are written finds their files missing (a 500, "File not found")."""
        for attempt in range(20):
            try:
                return await self._rows(sql)
            except RuntimeError:
                if attempt == 19:
                    raise
                await asyncio.sleep(0.05)
        raise AssertionError("unreachable")

    async def identity(self) -> str:
        rows = await self._meta_rows(
            f"SELECT key, min(value) AS value FROM {META_TABLE} WHERE key IN ('secret', 'identity') GROUP BY key"
        )
        found = {r["key"]: r["value"] for r in rows}
        return identity_of(found.get("identity"), "secret" in found, f"{self.shown}{self.db}")

    async def existing(
        self, content_hashes: Sequence[str], days: Collection[dt.date] | None = None
    ) -> dict[str, str]:
        """Without an index on the hash (MergeTree has none 18.16 can use), every call reads the
        hash column: of the given days' partitions only, when known, not of the whole table (a
        million rows over a year: 5-6 ms for three days against 30-38 ms; ten times the rows, ten
        times the whole table's time, on every group commit)."""
        found: dict[str, str] = {}
        narrow = ""
        if days and len(days) <= NARROWING_DAYS:
            dates = ", ".join(f"toDate({literal(d.isoformat())})" for d in sorted(days))
            narrow = f"measurement_start_day IN ({dates}) AND "
        for chunk in chunks(content_hashes):
            inlist = ", ".join(literal(h) for h in chunk)
            rows = await self._rows(
                f"SELECT content_hash, measurement_uid FROM {TABLE} WHERE {narrow}content_hash IN ({inlist})"
            )
            found.update((r["content_hash"], r["measurement_uid"]) for r in rows)
        return found

    async def insert(self, rows: Sequence[Row] | RowColumns) -> None:
        if isinstance(rows, RowColumns):
            rows = rows.rows()
        if not rows:
            return
        for part in by_days(rows):
            body = b"\n".join(orjson.dumps(encode(r)) for r in part)
            query_id = f"{self._insert_prefix}{uuid.uuid4().hex}"
            await self._query(f"INSERT INTO {TABLE} FORMAT JSONEachRow", data=body, query_id=query_id)

    async def _wait_for_earlier_inserts(self) -> None:
        """Wait for the inserts into this database that ClickHouse is still running from before this
        collector opened it: a collector killed with one in flight is answered never, but ClickHouse
        commits it, seconds later when it delays inserts for too many parts. The duplicate check (and
        the journal's replay) must see those rows, or a resend of them is stored twice (MergeTree has
        no unique key). Inserts are told apart by their query id; later ones (other collectors of the
        database) are not waited for. At most :data:`EARLIER_INSERTS_WAIT` seconds."""
        prefix = self._insert_prefix
        sql = (
            "SELECT query_id FROM system.processes "
            f"WHERE substring(query_id, 1, {len(prefix)}) = {literal(prefix)}"
        )
        running = {r["query_id"] for r in await self._rows(sql)}
        deadline = time.monotonic() + EARLIER_INSERTS_WAIT
        while running:
            if time.monotonic() > deadline:
                log.warning(
                    "%d insert(s) into %s from before this start still running after %g s: a resend "
                    "of their rows may be stored twice",
                    len(running),
                    self.db,
                    EARLIER_INSERTS_WAIT,
                )
                return
            await asyncio.sleep(0.1)
            running &= {r["query_id"] for r in await self._rows(sql)}

    async def delete(self, uid: str) -> bool:
        found = await self._rows(
            f"SELECT 1 AS one FROM {TABLE} WHERE measurement_uid = {literal(uid)} LIMIT 1"
        )
        if not found:
            return False
        await self._query(f"ALTER TABLE {TABLE} DELETE WHERE measurement_uid = {literal(uid)}")
        await self._mutations.wait_all()
        return True

    async def forget_findings(self) -> None:
        """Drop ``reachwatch analyze``'s record of what each row was judged by: its next run then
        redoes every row (it makes the table again)."""
        await self._query(f"DROP TABLE IF EXISTS {ANALYSIS_STATE}")

    #: a re-analysis writes the verdicts of many batches at once: each write is a mutation, which
    #: 18.16 makes by rewriting every part of the table, whatever rows it changes (1,828 rows over
    #: 1,100 days took 71 s at 500 rows a mutation, an outside check in session 19). Verdicts go
    #: through a Join table, so one mutation takes as many as ``reachwatch analyze`` writes at once.
    update_rows = 50_000
    #: each update being a mutation that rewrites whole parts, verdicts written after the commit
    #: would rewrite the table once per analysis batch: work that grows with the table for every
    #: batch (quadratic). Rows are judged before their insert instead, as OONI's fastpath does;
    #: mutations are left to what is rare (a re-analysis, rows an older version left unanalysed).
    verdicts_at_ingest = True

    async def update_analysis(self, rows: Sequence[Analysis]) -> None:
        """Set the verdict columns of ``rows``, ``confirmed = 0`` (the rules' verdict, without
        fingerprints) and ``analysed = 1``: in one mutation (:meth:`Mutations.write_verdicts`)."""
        await self._mutations.write_verdicts(rows)

    async def unanalysed(self, limit: int) -> list[tuple[str, bytes]]:
        """Up to ``limit`` (uid, raw) of rows stored before their verdict (``analysed = 0``)."""
        rows = await self._rows(
            f"SELECT measurement_uid, raw FROM {TABLE} WHERE analysed = 0 LIMIT {limit:d}"
        )
        return [(r["measurement_uid"], base64.b64decode(r["raw"])) for r in rows]

    async def get_raw(self, uid: str) -> bytes | None:
        """PREWHERE: the uid column is read first, ``raw`` only for the granule that holds it (a
        plain WHERE took 52 against 21 ms at 30,000 rows of 3 KB)."""
        rows = await self._rows(f"SELECT raw FROM {TABLE} PREWHERE measurement_uid = {literal(uid)} LIMIT 1")
        return base64.b64decode(rows[0]["raw"]) if rows else None

    async def search(
        self, f: Filters, limit: int, offset: int, order: ListOrder = ListOrder()
    ) -> tuple[int, list[dict[str, Any]]]:
        sql, params = query.list_sql(f, limit, offset, "clickhouse", order)
        csql, cparams = query.count_sql(f)
        count = await self._rows(render(csql.replace("count(*)", "count(*) AS n"), cparams))
        rows = [decode(r) for r in await self._rows(render(sql, params))]
        return count[0]["n"], rows

    async def aggregate(self, f: Filters, axes: list[str], grain: str = "day") -> list[dict[str, Any]]:
        sql, params = query.aggregate_sql(f, axes, "clickhouse", grain)
        rows = await self._rows(render(sql, params))
        for r in rows:
            if query.PERIOD in r:  # the time axis, under its own name (query.PERIOD)
                text = r.pop(query.PERIOD)
                if grain == "hour":
                    r["measurement_start_day"] = time_of(text)
                elif grain == "week":  # a day number (query._PERIOD_START)
                    r["measurement_start_day"] = EPOCH.date() + dt.timedelta(days=int(text))
                else:
                    r["measurement_start_day"] = day_of(text)
        columns = (*axes, *query.COUNTS)  # the axes, then the counts, as DuckDB's (JSON's order is its own)
        return [decode({k: r[k] for k in columns}) for r in rows]

    async def raw_batches(self, batch: int) -> AsyncIterator[list[tuple[str, bytes]]]:
        """Every row's (uid, raw), ``batch`` (at most :data:`IN_LIST`) at a time, in uid order: the
        uids read ahead, :data:`UID_CHUNK` at a time, each chunk after the last uid of the one
        before (not at an offset: a delete would skip rows); each batch's ``raw`` then by
        ``PREWHERE`` on its uids, so that only their granules' ``raw`` is read. Until session 19 each
        batch was ``ORDER BY measurement_uid LIMIT`` over ``raw`` too: the whole table's ``raw`` read
        for every 500 rows (the table is not ordered by uid)."""
        after = ""
        while True:
            chunk = await self._rows(
                f"SELECT measurement_uid FROM {TABLE} WHERE measurement_uid > {literal(after)} "
                f"ORDER BY measurement_uid LIMIT {UID_CHUNK:d}"
            )
            if not chunk:
                return
            uids = [r["measurement_uid"] for r in chunk]
            for part in chunks(uids, batch):
                rows = await self._rows(
                    f"SELECT measurement_uid, raw FROM {TABLE} "
                    f"PREWHERE measurement_uid IN ({', '.join(map(literal, part))})"
                )
                if rows:
                    yield [(r["measurement_uid"], base64.b64decode(r["raw"])) for r in rows]
            after = uids[-1]


def by_days(rows: Sequence[Row], most: int = DAYS_PER_INSERT) -> list[Sequence[Row]]:
    """``rows`` as one insert, or, when they fall on more than ``most`` days (an import of old
    measurements), as inserts of at most ``most`` days each: each day is a partition, and current
    ClickHouse refuses an insert into more than 100 (``max_partitions_per_insert_block``). Not
    atomic then: a failure leaves the earlier parts stored, which the retry finds as duplicates."""
    if len({r.measurement_start_day for r in rows}) <= most:
        return [rows]
    day = operator.attrgetter("measurement_start_day")
    days = [list(same) for _, same in itertools.groupby(sorted(rows, key=day), key=day)]
    return [[r for same in days[i : i + most] for r in same] for i in range(0, len(days), most)]
