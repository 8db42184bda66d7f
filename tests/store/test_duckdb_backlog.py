"""DuckDB only: rows kept unanalysed for the background analysis, and files from before the column."""

from __future__ import annotations

from pathlib import Path

import duckdb

from reachwatch.store import Filters, open_store
from reachwatch.store.duckdb import DuckDBStore
from reachwatch.store.schema import COLUMNS, TABLE, Analysis
from store.test_store import row


async def test_unanalysed_rows_and_their_update(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "m.duckdb"))
    assert isinstance(store, DuckDBStore)
    await store.open()
    try:
        await store.insert([row(i, analysed=i % 2 == 0) for i in range(10)])
        pending = await store.unanalysed(100)
        assert sorted(uid for uid, _ in pending) == sorted(row(i).measurement_uid for i in range(1, 10, 2))
        assert len(await store.unanalysed(2)) == 2
        await store.update_analysis(
            [Analysis(uid, "tcp_ip", False, "tcp-reset", "r", True, False) for uid, _ in pending]
        )
        assert await store.unanalysed(100) == []
        count, got = await store.search(Filters(blocking="tcp_ip"), 100, 0)
        assert count == 5 and all(g["analysed"] and g["anomaly"] for g in got)
    finally:
        await store.close()


async def test_a_file_without_the_analysed_column_gets_it(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    old = ", ".join(f"{c.name} {c.duckdb}" for c in COLUMNS if c.name != "analysed")
    con = duckdb.connect(str(path))
    con.execute(f"CREATE TABLE {TABLE} ({old})")
    con.close()
    store = open_store(str(path))
    await store.open()
    try:
        await store.insert([row(1)])
        _, got = await store.search(Filters(), 10, 0)
        assert got[0]["analysed"] is True and await store.unanalysed(10) == []
    finally:
        await store.close()
