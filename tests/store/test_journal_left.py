"""What a stopped collector left in a journal kept away from the DuckDB file is found by the next opener."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from reachwatch.errors import UserError
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


async def test_rows_left_elsewhere_that_the_store_cannot_take_stop_the_start(small_disk: Path) -> None:
    """A collector killed with rows in its ``--journal-dir`` on a full disk, started again without
    it: it served without them (a 404 for measurements it had acknowledged, health ok) and stored
    them at no point while it ran (an outside check, session 16). The start now says so and how to
    go on, and stores them once there is room."""
    db, elsewhere = small_disk / "m.duckdb", small_disk.parent / "journal"
    note_journal(str(db), str(elsewhere))
    store = JournaledStore(DuckDBStore(str(db)), str(elsewhere), **LAZY)
    await store.open()
    await store.insert([row(i) for i in range(300)])
    await killed(store)
    filler = small_disk / "filler"
    with filler.open("wb") as f, contextlib.suppress(OSError):
        f.write(b"\0" * (8 << 20))
    with pytest.raises(UserError, match=f"300 measurements .* wait in its journal {elsewhere}") as refused:
        await asyncio.to_thread(store_left_journal, str(db), besides=f"{db}.journal")
    assert f"--journal-dir {elsewhere}" in (refused.value.fix or "")
    filler.unlink()
    assert await asyncio.to_thread(store_left_journal, str(db), besides=f"{db}.journal") == 300
    assert await asyncio.to_thread(count_by_report, str(db)) == 300
