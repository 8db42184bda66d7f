"""The DuckDB store's own behaviour (what the Store protocol's tests do not cover)."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from pathlib import Path
from typing import Any

import duckdb
import pytest

from reachwatch.errors import UserError
from reachwatch.store.duckdb import DuckDBStore, _raws_of
from reachwatch.store.duckdb_memory import MEMORY_FLOOR_MB, default_memory_limit
from reachwatch.store.query import Filters
from reachwatch.store.schema import Analysis
from store.test_store import row


class _HeldInsert:
    """A connection whose INSERT waits for ``release`` once it has started (``started``)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.started = threading.Event()
        self.release = threading.Event()

    def execute(self, sql: str, *args: Any) -> Any:
        if sql.startswith("INSERT"):
            # the table DuckDB's replacement scan reads is a local of the caller: one here too
            incoming = sys._getframe(1).f_locals["incoming"]  # noqa: F841
            self.started.set()
            self.release.wait(10)
            return self.con.execute(sql, *args)
        return self.con.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.con, name)


async def test_an_insert_whose_caller_is_cancelled_is_still_known_to_existing(tmp_path: Path) -> None:
    """The writer thread commits an insert whether or not its caller still waits: a caller
    cancelled meanwhile (the journal's flush, cancelled as the collector stops) left the rows out
    of the hashes ``existing`` looks up, so the next insert of them (the flush retried at close)
    failed on the unique index and the rows stayed in the journal after a clean stop."""
    store = DuckDBStore(str(tmp_path / "m.duckdb"))
    await store.open()
    assert store._con is not None
    held = _HeldInsert(store._con)
    store._con = held  # type: ignore[assignment]
    r = row(1)
    task = asyncio.create_task(store.insert([r]))
    await asyncio.to_thread(held.started.wait, 10)
    task.cancel()
    await asyncio.sleep(0)
    held.release.set()
    await store._write(lambda con: None)  # the insert's turn on the writer thread is over
    assert task.cancelled()
    assert await store.existing([r.content_hash]) == {r.content_hash: r.measurement_uid}
    store._con = held.con
    await store.close()


async def test_the_backlog_update_looks_between_row_ids_and_the_uid_decides(tmp_path: Path) -> None:
    """The verdicts of the backlog are written where :meth:`unanalysed` found its rows; a range
    that no longer holds them (rows renumbered since) changes nothing, and the rows come back;
    rows from elsewhere (a re-analysis) are found by uid alone."""
    store = DuckDBStore(str(tmp_path / "m.duckdb"))
    await store.open()
    try:
        await store.insert([row(i, analysed=False) for i in range(6)])
        pending = [uid for uid, _ in await store.unanalysed(3)]
        assert len(pending) == 3
        right = dict(store._rowids)
        # as if the rows had moved: a range past the table
        store._rowids = {uid: rowid + 1_000 for uid, rowid in right.items()}
        await store.update_analysis(
            [Analysis(uid, "dns", False, "dns-nx", "r", True, False) for uid in pending]
        )
        assert sorted(uid for uid, _ in await store.unanalysed(10)) == sorted(
            row(i).measurement_uid for i in range(6)
        )
        await store.unanalysed(3)
        await store.update_analysis(
            [Analysis(uid, "dns", False, "dns-nx", "r", True, False) for uid in pending]
        )
        left = sorted(uid for uid, _ in await store.unanalysed(10))
        assert left == sorted(set(row(i).measurement_uid for i in range(6)) - set(pending))
        # a re-analysis: uids the last backlog did not give
        await store.update_analysis([Analysis(uid, None, True, None, None, False, False) for uid in left])
        assert await store.unanalysed(10) == []
        count, got = await store.search(Filters(blocking="dns"), 10, 0)
        assert count == 3 and sorted(g["measurement_uid"] for g in got) == sorted(pending)
    finally:
        await store.close()


async def test_a_reanalysis_batch_is_read_between_its_row_ids_or_else_by_uid(tmp_path: Path) -> None:
    """Each batch's ``raw`` is looked for between its rows' ids; rows no longer there (renumbered
    by a checkpoint after a delete) are then found by uid, and a deleted one is left out."""
    store = DuckDBStore(str(tmp_path / "m.duckdb"))
    await store.open()
    try:
        rows = [row(i) for i in range(6)]
        await store.insert(rows)
        places = await store._read(
            lambda cur: cur.execute("SELECT measurement_uid, rowid FROM measurements").fetchall()
        )
        assert await store.delete(rows[5].measurement_uid)
        moved = [(uid, rowid + 1_000) for uid, rowid in places[:3]] + places[3:]
        got = await store._read(lambda cur: _raws_of(cur, moved))
        assert sorted(r[0] for r in got) == sorted(r.measurement_uid for r in rows[:5])
        assert {r[0]: bytes(r[1]) for r in got} == {r.measurement_uid: r.raw for r in rows[:5]}
    finally:
        await store.close()


async def test_a_read_by_uid_finds_it_through_an_index(tmp_path: Path) -> None:
    """``measurement_uid`` is indexed, on a new store and on one made before the index was: a read
    or delete by uid does not read every uid of the day (29 ms at a million rows, 0.8 with it)."""
    path = tmp_path / "m.duckdb"
    store = DuckDBStore(str(path))
    await store.open()
    await store.insert([row(1), row(2)])
    await store.close()
    with duckdb.connect(str(path)) as con:
        con.execute("DROP INDEX measurements_uid")
    store = DuckDBStore(str(path))
    await store.open()
    try:
        assert await store.get_raw(row(2).measurement_uid) == row(2).raw
        assert await store.delete(row(1).measurement_uid)
    finally:
        await store.close()
    with duckdb.connect(str(path), read_only=True) as con:
        indexes = {r[0]: r[1] for r in con.execute("SELECT index_name, sql FROM duckdb_indexes()").fetchall()}
    assert "measurement_uid" in indexes["measurements_uid"]


async def test_past_the_kept_hashes_the_index_answers(tmp_path: Path) -> None:
    """The hashes are kept in memory up to ``kept_hashes``; past them (while running, or already at
    open) duplicates are still found, by the unique index, and the set is gone (bounded memory)."""
    path = str(tmp_path / "m.duckdb")
    store = DuckDBStore(path, kept_hashes=3)
    await store.open()
    rows = [row(i) for i in range(6)]
    await store.insert(rows[:2])
    assert store._hashes is not None and len(store._hashes) == 2
    await store.insert(rows[2:5])
    assert store._hashes is None
    found = await store.existing([r.content_hash for r in rows])
    assert found == {r.content_hash: r.measurement_uid for r in rows[:5]}
    await store.close()

    for kept, expect_set in ((3, False), (10, True)):
        again = DuckDBStore(path, kept_hashes=kept)
        await again.open()
        assert (again._hashes is not None) is expect_set
        assert await again.existing([r.content_hash for r in rows]) == found
        await again.close()


async def test_another_programs_measurements_table_is_a_clear_error(tmp_path: Path) -> None:
    """A DuckDB file of another program's, with a ``measurements`` table of its own: the start
    ended in a traceback (BinderException, no column content_hash)."""
    path = tmp_path / "theirs.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE measurements (id INTEGER, value DOUBLE)")
    store = DuckDBStore(str(path))
    with pytest.raises(UserError, match="cannot make or read the store's tables") as refused:
        await store.open()
    assert refused.value.fix is not None and "--db" in refused.value.fix
    await store.close()


@pytest.mark.parametrize("name", ["measurements.jsonl", "measurements.csv", "measurements.json"])
async def test_a_data_file_is_not_taken_for_a_store(tmp_path: Path, name: str) -> None:
    """DuckDB opens an existing .jsonl, .csv or .json file as a database in memory: a collector
    given one (arguments swapped) acknowledged measurements that were gone at its next start."""
    path = tmp_path / name
    path.write_text('{"probe_cc": "PK"}\n')
    store = DuckDBStore(str(path))
    with pytest.raises(UserError, match="not a DuckDB database file") as refused:
        await store.check()
    assert "reachwatch submit" in (refused.value.fix or "")
    with pytest.raises(UserError, match="not a DuckDB database file"):
        await store.open()
    await store.close()
    assert path.read_text() == '{"probe_cc": "PK"}\n'


def _limit_mib(con: duckdb.DuckDBPyConnection) -> float:
    """DuckDB's memory_limit in MiB (it answers ``286.1 MiB``, ``4.5 GiB``)."""
    (text,) = con.execute("SELECT current_setting('memory_limit')").fetchone() or ("",)
    number, unit = text.split()
    return float(number) * {"KiB": 1 / 1024, "MiB": 1, "GiB": 1024, "TiB": 1024**2}[unit]


async def test_duckdb_holds_a_bounded_share_of_memory(tmp_path: Path) -> None:
    """DuckDB's own default (80 % of the machine) let a collector's cache grow with its file, never
    given back (an outside soak: ~60 MB a minute); the store asks for a quarter, or what it is given."""
    total_mib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20
    assert int(default_memory_limit().removesuffix("MB")) == max(MEMORY_FLOOR_MB, int(total_mib * 0.25))
    for given, most in ((None, max(MEMORY_FLOOR_MB, total_mib * 0.25) + 1), ("300MB", 300)):
        store = DuckDBStore(str(tmp_path / f"{given}.duckdb"), memory_limit=given)
        await store.open()
        try:
            assert store._con is not None
            assert _limit_mib(store._con) <= most
        finally:
            await store.close()
    with pytest.raises(UserError, match="512MB"):
        DuckDBStore(str(tmp_path / "x.duckdb"), memory_limit="plenty")
