"""What a stopped collector left in a journal kept away from the DuckDB file is found by the next opener."""

from __future__ import annotations

import asyncio
from pathlib import Path

from reachwatch.store.duckdb import DuckDBStore
from reachwatch.store.journal import JournaledStore
from reachwatch.store.journal_left import note_journal, store_left_journal
from store.test_journal import LAZY, count_by_report, killed, segments
from store.test_store import row


async def test_a_reader_finds_the_journal_its_collector_was_told_to_keep_elsewhere(tmp_path: Path) -> None:
    db, elsewhere = tmp_path / "m.duckdb", tmp_path / "other" / "journal"
    note_journal(str(db), str(elsewhere))
    store = JournaledStore(DuckDBStore(str(db)), str(elsewhere), **LAZY)
    await store.open()
    await store.insert([row(i) for i in range(3)])
    await killed(store)
    assert await asyncio.to_thread(store_left_journal, str(db), besides=str(elsewhere)) == 0
    assert await asyncio.to_thread(count_by_report, str(db)) == 3
    assert segments(elsewhere) == []
    note_journal(str(db), f"{db}.journal")  # the default needs no note: the one above stays
    assert (tmp_path / "m.duckdb.journal-dir").read_text().strip() == str(elsewhere)
