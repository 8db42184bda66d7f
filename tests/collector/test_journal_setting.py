"""The journal setting across restarts: what one run left in the journal is never stranded."""

from __future__ import annotations

from pathlib import Path

from collector.conftest import collector
from reachwatch.collector.config import Settings
from reachwatch.store.duckdb import DuckDBStore
from reachwatch.store.journal import JournaledStore
from store.test_journal import LAZY, killed, segments
from store.test_store import row


async def test_a_run_without_the_journal_first_stores_what_a_killed_run_left_in_it(tmp_path: Path) -> None:
    db = tmp_path / "m.duckdb"
    left = JournaledStore(DuckDBStore(str(db)), f"{db}.journal", **LAZY)
    await left.open()
    await left.insert([row(i) for i in range(3)])
    await killed(left)
    async with collector(Settings(store=str(db), rate=0, journal=False)) as (_, http):
        for i in range(3):
            r = await http.get(f"/api/v1/measurement/{row(i).measurement_uid}")
            assert r.status_code == 200, r.text
    assert segments(tmp_path / "m.duckdb.journal") == []


async def test_a_journal_elsewhere_is_found_by_a_run_not_told_where_it_is(tmp_path: Path) -> None:
    """A run with --journal-dir, killed; the next run without it (journal beside the file, or
    none) still stores what the first acknowledged, and so does a reader of the file."""
    db, elsewhere = tmp_path / "m.duckdb", tmp_path / "journals" / "c1"
    for journal in (True, False):
        async with collector(Settings(store=str(db), rate=0, journal_dir=str(elsewhere))):
            pass  # the first run notes where it journals, as `serve --journal-dir` does
        left = JournaledStore(DuckDBStore(str(db)), str(elsewhere), **LAZY)
        await left.open()
        first = 10 if journal else 20
        await left.insert([row(i) for i in range(first, first + 3)])
        await killed(left)
        async with collector(Settings(store=str(db), rate=0, journal=journal)) as (_, http):
            for i in range(first, first + 3):
                r = await http.get(f"/api/v1/measurement/{row(i).measurement_uid}")
                assert r.status_code == 200, r.text
        assert segments(elsewhere) == []
