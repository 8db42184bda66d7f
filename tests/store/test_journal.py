"""The journal in front of a DuckDB file: acknowledged rows survive whatever state a kill leaves."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from reachwatch.analyze.duckdb_backend import DuckDBAnalysis
from reachwatch.errors import UserError
from reachwatch.store.compression import decompress
from reachwatch.store.duckdb import DuckDBStore
from reachwatch.store.journal import JournaledStore
from reachwatch.store.journal_files import DAMAGED, HEADER, SUFFIX, Segment, encode
from reachwatch.store.journal_left import store_left_journal
from reachwatch.store.query import Filters
from reachwatch.store.readers import open_reader
from reachwatch.store.schema import TABLE, RowColumns
from store.test_store import row

#: no flush of its own accord: a test decides when the rows reach the file
LAZY = {"quiet": 3600.0, "interval": 3600.0}


def stored(db: Path) -> list[str]:
    with duckdb.connect(str(db), read_only=True) as con:
        return sorted(r[0] for r in con.execute(f"SELECT measurement_uid FROM {TABLE}").fetchall())


def segments(journal: Path) -> list[Path]:
    return sorted(journal.glob(f"*{SUFFIX}"))


async def killed(store: JournaledStore) -> None:
    """What a ``kill -9`` leaves: the store's file closed as it stood, the journal as written."""
    assert store._task is not None
    store._task.cancel()
    store._thread.shutdown(wait=True)
    assert store._lock is not None
    os.close(store._lock)  # the kernel drops a killed process's lock
    await store.inner.close()


async def opened(db: Path, **options: float) -> JournaledStore:
    store = JournaledStore(DuckDBStore(str(db)), f"{db}.journal", **options)
    await store.open()
    return store


async def test_small_groups_are_acknowledged_from_the_journal_and_read_back(tmp_path: Path) -> None:
    db = tmp_path / "m.duckdb"
    store = await opened(db, **LAZY)
    rows = [row(i) for i in range(6)]
    await store.insert(rows[:3])
    await store.insert(rows[3:])
    assert store.held == 6
    # a duplicate is known before it reaches the file
    assert await store.existing([rows[4].content_hash]) == {rows[4].content_hash: rows[4].measurement_uid}
    # a read sees every acknowledged row: the journal is stored first
    raw = await store.get_raw(rows[5].measurement_uid)
    assert raw is not None and decompress(raw) == b'{"i": 5}'
    assert store.held == 0
    await store.close()
    assert stored(db) == sorted(r.measurement_uid for r in rows)
    assert segments(tmp_path / "m.duckdb.journal") == []


async def test_what_a_kill_leaves_in_the_journal_is_stored_by_the_next_open(tmp_path: Path) -> None:
    db = tmp_path / "m.duckdb"
    store = await opened(db, **LAZY)
    await store.insert([row(i) for i in range(4)])
    await store.flush()  # these reach the file
    await store.insert([row(i) for i in range(4, 9)])
    await killed(store)
    assert len(stored(db)) == 4
    assert len(segments(tmp_path / "m.duckdb.journal")) == 1
    again = await opened(db)
    await again.close()
    assert stored(db) == sorted(row(i).measurement_uid for i in range(9))
    assert segments(tmp_path / "m.duckdb.journal") == []


async def test_a_kill_between_the_insert_and_the_journals_deletion_stores_nothing_twice(
    tmp_path: Path,
) -> None:
    db = tmp_path / "m.duckdb"
    journal = tmp_path / "m.duckdb.journal"
    store = await opened(db, **LAZY)
    await store.insert([row(i) for i in range(5)])
    assert store._segment is not None
    kept = store._segment.path.read_bytes()
    await store.flush()
    await killed(store)
    (journal / f"{1:012d}{SUFFIX}").write_bytes(kept)  # as if the kill came before the unlink
    again = await opened(db)
    await again.close()
    assert stored(db) == sorted(row(i).measurement_uid for i in range(5))


async def test_a_record_cut_short_by_a_kill_is_dropped_and_the_rest_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """... and said so in the log (it went silently)."""
    caplog.set_level(logging.INFO, logger="reachwatch.store.journal")
    db = tmp_path / "m.duckdb"
    journal = tmp_path / "m.duckdb.journal"
    store = await opened(db, **LAZY)
    await store.insert([row(1), row(2)])
    await killed(store)
    (path,) = segments(journal)
    whole = path.read_bytes()
    # the start of a record whose write was interrupted (never acknowledged)
    path.write_bytes(whole + whole[: HEADER.size + 40])
    again = await opened(db)
    await again.close()
    assert stored(db) == sorted([row(1).measurement_uid, row(2).measurement_uid])
    assert list(journal.iterdir()) == []
    assert f"a record cut short at byte {len(whole)}" in caplog.text


async def test_a_directory_named_as_a_segment_is_left_alone(tmp_path: Path) -> None:
    """It ended the start in a traceback (IsADirectoryError)."""
    db = tmp_path / "m.duckdb"
    store = await opened(db, **LAZY)
    await store.insert([row(1)])
    await killed(store)
    (tmp_path / "m.duckdb.journal" / f"{99:012d}{SUFFIX}").mkdir()
    again = await opened(db)
    await again.insert([row(2)])
    await again.close()
    assert stored(db) == sorted([row(1).measurement_uid, row(2).measurement_uid])


async def _damaged_second_record(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A killed collector's journal of two records, the second damaged: (file, journal, segment)."""
    db = tmp_path / "m.duckdb"
    journal = tmp_path / "m.duckdb.journal"
    store = await opened(db, **LAZY)
    await store.insert([row(1)])
    await store.insert([row(2)])
    await killed(store)
    (path,) = segments(journal)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF  # a flipped byte in the second record
    path.write_bytes(bytes(data))
    return db, journal, path


async def test_a_damaged_segment_is_set_aside_after_its_whole_records(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db, journal, path = await _damaged_second_record(tmp_path)
    again = await opened(db)
    await again.close()
    assert stored(db) == [row(1).measurement_uid]
    assert [p.name for p in journal.iterdir()] == [path.name + DAMAGED]
    assert any("fails its checksum" in r.getMessage() for r in caplog.records)


async def test_a_damaged_segments_whole_records_survive_a_kill_before_they_are_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The damaged segment was renamed aside as it was read, before its whole (acknowledged) records
    were stored: a start killed, or whose store refused them, in between lost them, since the next
    start reads only ``.rwj`` files."""
    db, journal, path = await _damaged_second_record(tmp_path)

    async def refuse(self: DuckDBStore, rows: object) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(DuckDBStore, "insert", refuse)
        failing = await opened(db, **LAZY)
        assert failing.failing and failing.held == 1
        await killed(failing)  # killed while its store refuses the rows
    again = await opened(db)
    await again.close()
    assert stored(db) == [row(1).measurement_uid]
    assert [p.name for p in journal.iterdir()] == [path.name + DAMAGED]


async def test_big_groups_are_journaled_too_and_one_past_the_bound_fits_an_empty_journal(
    tmp_path: Path,
) -> None:
    """A batch is acknowledged from the journal like a single post (docs/collector.md, "Session
    10"); one bigger than the journal may hold (a --max-pending above it) waits for an empty
    journal, not for ever."""
    db = tmp_path / "m.duckdb"
    store = await opened(db, max_held=10, quiet=0.01, interval=0.05)
    await store.insert([row(i) for i in range(5)])
    await asyncio.wait_for(store.insert([row(i) for i in range(5, 30)]), 5)  # waits for the flush
    assert store.held == 25
    await killed(store)
    assert len(stored(db)) == 5
    again = await opened(db)
    await again.close()
    assert len(stored(db)) == 30


async def test_the_flusher_stores_rows_once_ingest_pauses(tmp_path: Path) -> None:
    db = tmp_path / "m.duckdb"
    store = await opened(db, quiet=0.01, interval=0.05)
    await store.insert([row(1)])
    for _ in range(200):
        if store.held == 0:
            break
        await asyncio.sleep(0.01)
    await killed(store)
    assert stored(db) == [row(1).measurement_uid]


async def test_one_journal_one_collector(tmp_path: Path) -> None:
    """Two collectors on one journal (two ClickHouse collectors given the same --journal-dir)
    would replay each other's segments: the second is refused with a clear message."""
    first = await opened(tmp_path / "a.duckdb", **LAZY)
    second = JournaledStore(DuckDBStore(str(tmp_path / "b.duckdb")), tmp_path / "a.duckdb.journal")
    with pytest.raises(UserError, match="another collector is using this journal"):
        await second.check()
    assert not (tmp_path / "b.duckdb").exists()  # a refused start makes no store file
    with pytest.raises(UserError, match="another collector is using this journal"):
        await second.open()
    # a reader of the file leaves a running collector's journal to it
    await first.insert([row(1)])
    assert await asyncio.to_thread(store_left_journal, str(tmp_path / "a.duckdb")) == 0
    assert first.held == 1
    await first.close()


def count_by_report(db: str) -> int:
    """The rows as `reachwatch report --db` (and findings, aggregate) open the file."""
    reader = open_reader(db)
    try:
        return int(reader.rows(f"SELECT count(*) FROM {TABLE}")[0][0])
    finally:
        reader.close()


def count_by_analysis(db: str) -> int:
    """The rows as `reachwatch analyze --db` opens the file."""
    analysis = DuckDBAnalysis(db)
    try:
        return int(analysis.con.execute(f"SELECT count(*) FROM {TABLE}").fetchall()[0][0])
    finally:
        analysis.con.close()


@pytest.mark.parametrize("count", [count_by_report, count_by_analysis])
async def test_a_reader_of_the_file_first_stores_what_a_kill_left_in_the_journal(
    tmp_path: Path, count: Callable[[str], int]
) -> None:
    db = tmp_path / "m.duckdb"
    store = await opened(db, **LAZY)
    await store.insert([row(i) for i in range(3)])
    await killed(store)
    assert await asyncio.to_thread(count, str(db)) == 3
    assert segments(tmp_path / "m.duckdb.journal") == []


async def test_a_segment_the_store_refuses_does_not_hold_back_the_others(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Whatever makes the store refuse one segment's rows (here a NULL where the table wants a
    value), the other segments are stored; the refused one stays in the journal, retried."""
    db = tmp_path / "m.duckdb"
    journal = tmp_path / "m.duckdb.journal"
    journal.mkdir()
    refused = RowColumns.of_rows([row(1)])
    refused = RowColumns(refused.table.set_column(2, "report_id", pa.array([None], pa.string())))
    for number, rows in ((1, refused), (2, RowColumns.of_rows([row(2), row(3)]))):
        segment = Segment(journal / f"{number:012d}{SUFFIX}", sync=False)
        segment.append(encode(rows))
        segment.close()
    store = await opened(db, **LAZY)
    assert store.held == 1
    await store.insert([row(4)])
    await store.close()
    assert stored(db) == sorted(row(i).measurement_uid for i in (2, 3, 4))
    assert [p.name for p in segments(journal)] == [f"{1:012d}{SUFFIX}"]
    assert any("stay in the journal" in r.getMessage() for r in caplog.records)


async def test_empty_segments_a_kill_leaves_are_not_a_store_failure(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Each flush starts a new segment, so an idle collector killed (or one whose start failed
    after the journal opened: a bad ``--asn-db``) leaves an empty one. The next start took it for
    rows to store, failed on an IndexError, logged errors and answered "store failing" (503) on
    ``/api/v1/health`` for 10 s; so did a damaged segment with no whole record."""
    db = tmp_path / "m.duckdb"
    journal = tmp_path / "m.duckdb.journal"
    store = await opened(db, **LAZY)
    await store.insert([row(1)])
    await store.flush()
    await killed(store)
    (empty,) = segments(journal)
    assert empty.stat().st_size == 0
    store = await opened(db, **LAZY)
    await store.insert([row(2)])
    await killed(store)
    (path,) = [p for p in segments(journal) if p.stat().st_size]
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF  # its only record damaged
    path.write_bytes(bytes(data))
    (journal / f"{99:012d}{SUFFIX}").write_bytes(b"")
    caplog.clear()
    again = await opened(db, **LAZY)
    assert not again.failing and again.recovered == 0
    await again.close()
    assert stored(db) == [row(1).measurement_uid]
    assert segments(journal) == []
    assert [p.name for p in journal.iterdir()] == [path.name + DAMAGED]
    assert not [r for r in caplog.records if "IndexError" in r.getMessage() or "failed" in r.getMessage()]
    assert await asyncio.to_thread(store_left_journal, str(db)) == 0


class _RemoteStore:
    """A store over the network, as ClickHouse: an insert sent is committed by the server a moment
    later whether or not its caller still waits for the answer, and no unique key refuses a row
    inserted twice."""

    def __init__(self) -> None:
        self.rows: list[str] = []
        self.sent = asyncio.Event()

    async def check(self) -> None:
        pass

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def existing(self, content_hashes: list[str], days: object = None) -> dict[str, str]:
        return {h: "uid" for h in content_hashes if h in self.rows}

    async def insert(self, rows: RowColumns) -> None:
        done = asyncio.get_running_loop().create_future()

        def commit() -> None:
            self.rows.extend(rows.content_hashes)
            if not done.done():
                done.set_result(None)

        asyncio.get_running_loop().call_later(0.05, commit)
        self.sent.set()
        await done


async def test_a_flush_whose_caller_is_cancelled_does_not_insert_its_rows_twice(tmp_path: Path) -> None:
    """A read, the analyser or the flusher flushing the journal when the collector stops is
    cancelled with its insert in flight, which the server commits anyway; the rows stayed in the
    journal, and the flush at close, not seeing them committed yet, inserted them a second time
    (ClickHouse stored an acknowledged measurement twice)."""
    remote = _RemoteStore()
    store = JournaledStore(remote, tmp_path / "journal", **LAZY)  # type: ignore[arg-type]
    await store.open()
    await store.insert([row(1)])
    reader = asyncio.create_task(store.settle())
    await remote.sent.wait()
    reader.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reader
    await store.close()
    await asyncio.sleep(0.1)  # anything still in flight lands
    assert remote.rows == [row(1).content_hash]
    assert segments(tmp_path / "journal") == []


async def test_a_read_fails_while_the_store_refuses_what_the_journal_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It answered from what the store had: a list without measurements already acknowledged, a
    404 for one of them (an outside check, session 15). Now the read fails (the API's 503)."""
    db = tmp_path / "m.duckdb"
    store = await opened(db, **LAZY)
    await store.insert([row(1)])
    await store.flush()
    original = DuckDBStore.insert

    async def refuse(self: DuckDBStore, rows: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(DuckDBStore, "insert", refuse)
    await store.insert([row(2)])  # acknowledged: in the journal
    for read in (
        store.search(Filters(), 10, 0),
        store.aggregate(Filters(), []),
        store.get_raw(row(2).measurement_uid),
    ):
        with pytest.raises(OSError, match="No space left"):
            await read
    monkeypatch.setattr(DuckDBStore, "insert", original)
    count, _ = await store.search(Filters(), 10, 0)
    assert count == 2 and await store.get_raw(row(2).measurement_uid) is not None
    await store.close()
