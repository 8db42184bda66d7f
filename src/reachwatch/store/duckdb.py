"""DuckDB backend: one file, one writer thread, readers on their own cursors.

Inserts go through an Arrow table (columnar binding is an order of magnitude faster than
row-by-row parameters) read by a replacement scan, built and committed on the writer thread before :meth:`DuckDBStore.insert`
returns. ``raw`` (already zstd) is stored without DuckDB's own compression and the WAL is
checkpointed every :data:`CHECKPOINT` rather than every 16 MB: trying FSST/dictionary on
compressed bytes and rewriting the growing row group at every small checkpoint cost more than the
insert itself (see docs/collector.md, "Performance").
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import os
import secrets
import stat
import threading
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import duckdb
import pyarrow as pa

from reachwatch.errors import UserError
from reachwatch.store import query
from reachwatch.store.duckdb_memory import check_memory_limit, default_memory_limit
from reachwatch.store.query import Filters, ListOrder
from reachwatch.store.schema import (
    ANALYSIS_COLUMNS,
    ANALYSIS_STATE,
    ARROW_SCHEMA,
    COLUMN_NAMES,
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

T = TypeVar("T")
#: WAL size that triggers a checkpoint (DuckDB's default is 16 MB); a kill -9 replays at most this
#: (512 MB: ~1.2 s at the next open). Each checkpoint rewrites the row group still filling (122,880
#: rows, ~260 MB of median rows): at 128 MB that was twice per row group, ~4 us of a row's ~20 us
#: on the writer thread, and a file 6 % bigger (docs/collector.md, "Session 11").
CHECKPOINT = "512MB"
#: Column storage options beyond the type (``raw`` is zstd already: DuckDB's compression only costs).
_STORAGE = {"raw": "USING COMPRESSION uncompressed"}
#: Columns added after the first release: added to older files on open, with the value old rows get.
_ADDED = {"analysed": "BOOLEAN DEFAULT true"}
ANALYSIS_SCHEMA = pa.schema([ARROW_SCHEMA.field(name) for name in ("measurement_uid", *ANALYSIS_COLUMNS)])


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection, **tables: pa.Table) -> Iterator[None]:
    """BEGIN ... COMMIT on ``con`` with ``tables`` registered as views by name; ROLLBACK on error."""
    con.execute("BEGIN").fetchall()
    try:
        for name, table in tables.items():
            con.register(name, table)
        yield
        con.execute("COMMIT").fetchall()
    except BaseException:
        con.execute("ROLLBACK").fetchall()
        raise
    finally:
        for name in tables:
            con.unregister(name)


#: Content hashes kept in memory (~70 MB a million), so that a group of new measurements needs no
#: look-up in the unique index. Past this many the set is dropped, and every group asks the index
#: (one statement: ~2 ms for 1,000 hashes at a million rows), so that memory and the time to open
#: stay bounded however big the file grows.
KEPT_HASHES = 2_000_000

#: uids a re-analysis reads ahead in one scan of the uid column (~6 MB of them): at ten million
#: rows, 100 scans instead of one a batch of 500
UID_CHUNK = 100_000
#: rows whose place :meth:`DuckDBStore.update_analysis` remembers at most (a batch the analysis
#: gave up on is never updated: its rows are forgotten past this)
KEPT_ROWIDS = 50_000


class DuckDBStore:
    def __init__(self, path: str, *, kept_hashes: int = KEPT_HASHES, memory_limit: str | None = None) -> None:
        self.path = path
        self.kept_hashes = kept_hashes
        #: how much memory DuckDB may hold (its buffer cache above all): :func:`default_memory_limit`
        self.memory_limit = check_memory_limit(memory_limit) if memory_limit else default_memory_limit()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="duckdb-writer")
        self._readers = ThreadPoolExecutor(2, thread_name_prefix="duckdb-reader")
        self._local = threading.local()
        #: :func:`_key` of every stored hash, or None past :attr:`kept_hashes`
        self._hashes: set[int] | None = set()
        #: where the rows :meth:`unanalysed` and :meth:`raw_batches` gave are (uid -> rowid), until
        #: :meth:`update_analysis` writes them: it then looks for them only in that range of rows
        self._rowids: dict[str, int] = {}

    # -- threads -------------------------------------------------------------------------------
    async def _write(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        con = self._con
        assert con is not None, "store not opened"
        return await asyncio.get_running_loop().run_in_executor(self._writer, fn, con)

    async def _read(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        def run() -> T:
            cur = getattr(self._local, "cur", None)
            if cur is None:
                assert self._con is not None
                cur = self._local.cur = self._con.cursor()
            return fn(cur)

        return await asyncio.get_running_loop().run_in_executor(self._readers, run)

    # -- lifecycle -----------------------------------------------------------------------------
    def _connect(self) -> duckdb.DuckDBPyConnection:
        parent = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(parent):
            raise UserError(f"directory {parent} does not exist", where=self.path, fix="create it first")
        if _empty_file(self.path) and _empty_file(self.path + ".wal", missing=True):
            # what a creation that failed leaves (a full disk): nothing in it, and DuckDB would
            # refuse it for ever as "not a valid DuckDB database file"
            log.warning("%s is empty (a creation that failed): making the store anew", self.path)
            os.unlink(self.path)
        new = not os.path.exists(self.path)
        try:
            con = duckdb.connect(self.path, config={"threads": 1, "memory_limit": self.memory_limit})
        except duckdb.Error as exc:
            if new:  # leave nothing behind that the next start would refuse
                for leftover in (self.path, self.path + ".wal"):
                    if _empty_file(leftover):
                        os.unlink(leftover)
            raise UserError(f"cannot open DuckDB file: {exc}", where=self.path) from exc
        backed = con.execute(
            "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
        ).fetchall()
        if not backed or backed[0][0] is None:
            # DuckDB reads an existing data file (x.jsonl, x.csv, x.json) as a database in memory:
            # everything acknowledged would be gone at the next start (an outside check, session 16)
            con.close()
            raise UserError(
                "not a DuckDB database file: DuckDB would read it as data, and keep the store in "
                "memory only (lost at the next start)",
                where=self.path,
                fix="give --db a DuckDB file (a new name, FILE.duckdb, makes one); to load "
                "measurements from a file, `reachwatch submit FILE --collector URL`",
            )
        return con

    async def check(self) -> None:
        """Whether the file can be opened (a DuckDB file no other process holds), without making
        it: a start that something else then refuses (the journal) leaves no empty store behind."""
        parent = os.path.dirname(os.path.abspath(self.path))
        if not os.path.exists(self.path) and os.path.isdir(parent):
            if not os.access(parent, os.W_OK | os.X_OK):
                raise UserError(
                    f"cannot make a DuckDB file in {parent}: not writable",
                    where=self.path,
                    fix="give --db a path in a directory the collector can write",
                )
            return
        (await asyncio.to_thread(self._connect)).close()

    async def open(self) -> None:
        self._con = await asyncio.to_thread(self._connect)
        cols = ", ".join(_column_sql(c.name, c.duckdb) for c in COLUMNS)

        def create(con: duckdb.DuckDBPyConnection) -> set[int] | None:
            con.execute(f"SET checkpoint_threshold = '{CHECKPOINT}'").fetchall()
            con.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} ({cols})").fetchall()
            for name, sql in _ADDED.items():
                con.execute(f"ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS {name} {sql}").fetchall()
            con.execute(
                f"CREATE UNIQUE INDEX IF NOT EXISTS {TABLE}_hash ON {TABLE} (content_hash)"
            ).fetchall()
            # a read or delete by uid: without it, every uid of the day is read (DuckDB keeps 8
            # bytes of a string's min/max, and a day's uids share them): 29 ms at a million rows,
            # 0.8 with it, for ~1 us per inserted row; made once on a store from before
            con.execute(f"CREATE INDEX IF NOT EXISTS {TABLE}_uid ON {TABLE} (measurement_uid)").fetchall()
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {META_TABLE} (key VARCHAR PRIMARY KEY, value BLOB)"
            ).fetchall()
            return self._stored_keys(con)

        try:
            self._hashes = await self._write(create)
        except duckdb.Error as exc:  # another program's file, with a table of that name; a full disk
            raise UserError(
                f"cannot make or read the store's tables: {exc}",
                where=self.path,
                fix="give --db a file of its own (a new name makes a new store), or free disk space",
            ) from exc

    def _stored_keys(self, con: duckdb.DuckDBPyConnection) -> set[int] | None:
        """The :func:`_key` of every stored hash, read in pieces; None past :attr:`kept_hashes`."""
        count = con.execute(f"SELECT count(*) FROM {TABLE}").fetchall()[0][0]
        if count > self.kept_hashes:
            return None
        keys: set[int] = set()
        result = con.execute(f"SELECT content_hash FROM {TABLE}")
        while piece := result.fetchmany(100_000):
            keys.update(_key(h) for (h,) in piece)
        return keys

    async def close(self) -> None:
        # readers first: a read still running on a cursor (a cancelled caller's) keeps the connection busy
        await asyncio.to_thread(self._readers.shutdown, wait=True)
        if self._con is not None:
            await self._write(lambda con: con.close())
            self._con = None
        self._writer.shutdown(wait=True)

    async def secret(self) -> bytes:
        def get(con: duckdb.DuckDBPyConnection) -> bytes:
            row = _one(con.execute(f"SELECT value FROM {META_TABLE} WHERE key = 'secret'"))
            if row is not None:
                return bytes(row[0])
            value = secrets.token_bytes(32)
            # with the identity hash, in one statement: a secret without one is an older store's
            con.execute(
                f"INSERT INTO {META_TABLE} VALUES ('secret', ?), ('identity', ?)", [value, IDENTITY.encode()]
            ).fetchall()
            return value

        return await self._write(get)

    async def identity(self) -> str:
        def get(con: duckdb.DuckDBPyConnection) -> str:
            found = dict(
                con.execute(
                    f"SELECT key, value FROM {META_TABLE} WHERE key IN ('secret', 'identity')"
                ).fetchall()
            )
            recorded = found.get("identity")
            return identity_of(
                None if recorded is None else bytes(recorded).decode(), "secret" in found, self.path
            )

        return await self._write(get)

    # -- writes --------------------------------------------------------------------------------
    async def existing(
        self, content_hashes: Sequence[str], days: Collection[dt.date] | None = None
    ) -> dict[str, str]:
        """``days`` are not read: the unique index on the hash finds a row at once (a million rows:
        ~2 ms), where a filter on the days, a range for the row groups' min/max, read more."""
        known = self._hashes
        maybe = list(content_hashes) if known is None else [h for h in content_hashes if _key(h) in known]
        if not maybe:
            return {}

        # one statement for the whole group (a point SELECT costs ~0.5 ms of CPU per hash; a list
        # parameter ~25 us per hash at 200, 7 us at 1,000)
        sql = (
            f"SELECT content_hash, measurement_uid FROM {TABLE} "
            "WHERE content_hash IN (SELECT unnest(?::VARCHAR[]))"
        )

        def find(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
            return dict(con.execute(sql, [maybe]).fetchall())

        return await self._write(find)

    async def insert(self, rows: Sequence[Row] | RowColumns) -> None:
        batch = rows if isinstance(rows, RowColumns) else RowColumns.of_rows(rows)
        if not len(batch):
            return
        names = ", ".join(COLUMN_NAMES)

        def ins(con: duckdb.DuckDBPyConnection) -> None:
            incoming = batch.table  # noqa: F841 (read by the SQL: DuckDB's replacement scan)
            # a replacement scan of the local, not register()/unregister(): those two catalog changes
            # cost ~1.3 ms of CPU per statement, more than the insert of 60 rows
            con.execute(f"INSERT INTO {TABLE} ({names}) SELECT {names} FROM incoming").fetchall()
            # here, not after the await: the thread commits even if the caller is cancelled meanwhile,
            # and a hash left out would make the next insert of the row fail on the unique index
            known = self._hashes
            if known is not None:
                known.update(_key(h) for h in batch.content_hashes)
                if len(known) > self.kept_hashes:
                    self._hashes = None  # from now on the index answers every group

        await self._write(ins)

    async def delete(self, uid: str) -> bool:
        def rm(con: duckdb.DuckDBPyConnection) -> bool:
            row = con.execute(f"DELETE FROM {TABLE} WHERE measurement_uid = ? RETURNING 1", [uid]).fetchall()
            return bool(row)

        return await self._write(rm)

    async def forget_findings(self) -> None:
        """Drop ``reachwatch analyze``'s record of what each row was judged by (after every row's
        verdict was made again by the rules alone): its next run then redoes every row."""

        def drop(con: duckdb.DuckDBPyConnection) -> None:
            con.execute(f"DROP TABLE IF EXISTS {ANALYSIS_STATE}").fetchall()

        await self._write(drop)

    #: a re-analysis writes each batch it judged (500 rows): small writes, each in its rows' range
    update_rows = 500
    #: an UPDATE rewrites only its rows: verdicts are written after the commit, off the ack path
    verdicts_at_ingest = False

    async def update_analysis(self, rows: Sequence[Analysis]) -> None:
        """Set the verdict columns of ``rows`` (and ``analysed``; ``confirmed`` false: the rules'
        verdict, without fingerprints) in one statement, one commit.

        Rows that :meth:`unanalysed` just gave are looked for only between their row ids: joined
        on the uid alone, the update read every uid in the table (DuckDB keeps 8 bytes of a
        string's min/max, and all of a day's uids begin alike): 50 ms for 1,000 rows at 800,000
        rows and 94 at 1.6 million, ~2 a second behind a sustained ingest, against 4 ms. A row moved since (a checkpoint
        after a delete may renumber rows) is then left out, still unanalysed, and comes back in
        the next backlog; the uid decides which rows change, the range only where to look."""
        if not rows:
            return
        names = ANALYSIS_SCHEMA.names
        sets = ", ".join(f"{n} = a.{n}" for n in names[1:])
        where = _rowid_range([self._rowids.pop(a.measurement_uid, None) for a in rows])
        sql = (
            f"UPDATE {TABLE} SET {sets}, confirmed = false, analysed = true FROM analysed_rows a "
            f"WHERE {TABLE}.measurement_uid = a.measurement_uid{where}"
        )

        def upd(con: duckdb.DuckDBPyConnection) -> None:
            analysed_rows = pa.Table.from_pylist(  # noqa: F841 (read by the SQL: replacement scan)
                [{n: getattr(a, n) for n in names} for a in rows], schema=ANALYSIS_SCHEMA
            )
            con.execute(sql).fetchall()

        await self._write(upd)

    async def unanalysed(self, limit: int) -> list[tuple[str, bytes]]:
        """Up to ``limit`` (uid, raw) of rows stored before their verdict (``analysed`` false)."""
        sql = f"SELECT measurement_uid, raw, rowid FROM {TABLE} WHERE NOT analysed LIMIT {limit:d}"
        rows = await self._read(functools.partial(_fetch, sql=sql))
        self._note_rowids(rows)
        return [(r[0], bytes(r[1])) for r in rows]

    def _note_rowids(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Remember each (uid, _, rowid) row's place for :meth:`update_analysis`. Rows given and
        never updated (an analysis that failed) are forgotten past :data:`KEPT_ROWIDS`."""
        if len(self._rowids) > KEPT_ROWIDS:
            self._rowids.clear()
        self._rowids.update((r[0], r[2]) for r in rows)

    # -- reads ---------------------------------------------------------------------------------
    async def get_raw(self, uid: str) -> bytes | None:
        def get(cur: duckdb.DuckDBPyConnection) -> bytes | None:
            row = _one(cur.execute(f"SELECT raw FROM {TABLE} WHERE measurement_uid = ?", [uid]))
            return None if row is None else bytes(row[0])

        return await self._read(get)

    async def search(
        self, f: Filters, limit: int, offset: int, order: ListOrder = ListOrder()
    ) -> tuple[int, list[dict[str, Any]]]:
        sql, params = query.list_sql(f, limit, offset, "duckdb", order)
        csql, cparams = query.count_sql(f)

        def run(cur: duckdb.DuckDBPyConnection) -> tuple[int, list[dict[str, Any]]]:
            count_row = _one(cur.execute(csql, cparams))
            rows = cur.execute(sql, params).fetchall()
            return (count_row[0] if count_row else 0), [
                dict(zip(query.LIST_COLUMNS, r, strict=True)) for r in rows
            ]

        return await self._read(run)

    async def aggregate(self, f: Filters, axes: list[str], grain: str = "day") -> list[dict[str, Any]]:
        sql, params = query.aggregate_sql(f, axes, "duckdb", grain)
        names = [*axes, *query.COUNTS]

        def run(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
            return [dict(zip(names, r, strict=True)) for r in cur.execute(sql, params).fetchall()]

        return await self._read(run)

    async def raw_batches(self, batch: int) -> AsyncIterator[list[tuple[str, bytes]]]:
        """Every row's (uid, raw), ``batch`` at a time, in uid order. The uids are read ahead,
        :data:`UID_CHUNK` at a time, each chunk after the last uid of the one before (not at an
        offset: a delete or insert between two would shift every row after it, and rows would be
        skipped); each batch's ``raw`` is then read from just its rows' range of row ids, as
        :meth:`update_analysis` writes them. Until session 19 each batch of 500 was a scan of the
        whole table, its ``raw`` included, and so was its update: a re-analysis took time in the
        square of the rows (120,000 rows: 2,700 a second, against 4,700 at 22,500)."""
        sql = f"SELECT measurement_uid, rowid FROM {TABLE} WHERE measurement_uid > ? ORDER BY measurement_uid LIMIT {UID_CHUNK:d}"
        after = ""
        while True:
            chunk = await self._read(functools.partial(_fetch, sql=sql, params=[after]))
            if not chunk:
                return
            for i in range(0, len(chunk), batch):
                rows = await self._read(functools.partial(_raws_of, part=chunk[i : i + batch]))
                self._note_rowids(rows)
                if rows:
                    yield [(r[0], bytes(r[1])) for r in rows]
            after = chunk[-1][0]


def _raws_of(cur: duckdb.DuckDBPyConnection, part: Sequence[tuple[str, int]]) -> list[tuple[Any, ...]]:
    """(uid, raw, rowid) of the (uid, rowid) rows of ``part`` still stored: looked for between their
    row ids, then, for any not found there (rows renumbered by a checkpoint after a delete, or
    deleted), by uid alone."""
    uids = [u for u, _ in part]
    rowids = [r for _, r in part]
    sql = f"SELECT measurement_uid, raw, rowid FROM {TABLE} WHERE measurement_uid IN (SELECT unnest(?))"
    rows = cur.execute(f"{sql} AND rowid BETWEEN ? AND ?", [uids, min(rowids), max(rowids)]).fetchall()
    if len(rows) < len(uids):
        found = {r[0] for r in rows}
        rows += cur.execute(sql, [[u for u in uids if u not in found]]).fetchall()
    return rows


def _rowid_range(rowids: Sequence[int | None]) -> str:
    """`` AND rowid BETWEEN lo AND hi`` around ``rowids``; "" if any is unknown (rows that did not
    come from the last backlog: a re-analysis)."""
    known = [r for r in rowids if r is not None]
    if not known or len(known) < len(rowids):
        return ""
    return f" AND {TABLE}.rowid BETWEEN {min(known):d} AND {max(known):d}"


def _one(result: duckdb.DuckDBPyConnection) -> tuple[Any, ...] | None:
    """The first row, reading the whole result (DuckDB 2 refuses new work on an unfinished one)."""
    rows = result.fetchall()
    return rows[0] if rows else None


def _fetch(
    cur: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None
) -> list[tuple[Any, ...]]:
    return cur.execute(sql, params).fetchall()


def _empty_file(path: str, *, missing: bool = False) -> bool:
    """A regular file of 0 bytes (or, ``missing``, none at all)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return missing
    return stat.S_ISREG(st.st_mode) and st.st_size == 0


def _column_sql(name: str, type_sql: str) -> str:
    """``name TYPE [USING COMPRESSION ...] [NOT NULL]``: DuckDB wants the storage option first."""
    option = _STORAGE.get(name)
    if option is None:
        return f"{name} {type_sql}"
    kind, _, constraint = type_sql.partition(" ")
    return f"{name} {kind} {option} {constraint}".rstrip()


def _key(content_hash: str) -> int:
    """What the in-memory set of stored hashes holds: Python's hash of the string (64 bits, as the
    hex prefix it replaces, but kept by the string once computed: no parse per look-up)."""
    return hash(content_hash)
