"""A write-ahead journal in front of a store: groups acknowledged after one append, inserted into
the store many at a time.

DuckDB pays ~2.5 ms of CPU for every insert statement whatever its size (scanning the Arrow table,
the WAL, the commit), so single posts, committed in groups of ~20, spent most of the collector's
writer on statements, and batches of 500 lines a quarter of it. :class:`JournaledStore` wraps a
store: every group is appended to a journal file (one ``write`` of its Arrow IPC bytes, then
``fdatasync``) and :meth:`~JournaledStore.insert` returns (the collector then answers 2xx); a
background task inserts what has accumulated into the store in one statement once ingest pauses
(``quiet``), every ``interval`` seconds under a steady load, or at ``flush_rows``. Batches went
straight to the store until session 10: through the journal, their answers no longer wait for the
store's insert and its statements hold ~1,000 rows instead of 500 (docs/collector.md, "Session 10").

Recovery: the journal is a directory of segment files (``NNNNNNNNNNNN.rwj``); each flush starts a
new segment and deletes the old ones once their rows are committed. On open, every segment left
(a ``kill -9``, a power cut, a store that refused rows) is inserted again, skipping rows the store
already holds (the content hash is unique), then deleted. A record cut short (killed in the middle
of its write) was never acknowledged and is dropped; a damaged segment is kept aside
(``.damaged``) for the operator rather than deleted, once its whole records are in the store (set
aside before, a kill or a store failure in between would lose them: the next open reads only
``.rwj`` files).

Reads see everything acknowledged: every read first inserts what the journal holds, and fails
if the store refuses it (the collector's 503), rather than answer without them. A store
write that fails (a full disk) leaves the rows in the journal: each segment is then tried on its
own (one the store refuses must not hold back the rest) and what is refused is retried. One
collector per journal: the directory is locked (``flock``) while the store is open.

The files themselves (record format, segments, lock): :mod:`reachwatch.store.journal_files`; what
a stopped collector left, for the next opener of the file: :mod:`reachwatch.store.journal_left`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import errno
import logging
import os
from collections.abc import AsyncIterator, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from reachwatch.store import Store
from reachwatch.store.journal_files import (
    SUFFIX,
    Segment,
    encode,
    left_segments,
    lock_directory,
    set_aside,
    sync_directory,
    unlink,
)
from reachwatch.store.query import Filters, ListOrder
from reachwatch.store.schema import Analysis, Row, RowColumns

log = logging.getLogger(__name__)

#: Seconds without an append after which what the journal holds is inserted (ingest paused).
QUIET = 0.01
#: Longest the journal holds rows under a steady load before inserting them.
INTERVAL = 0.05
#: Rows that trigger an insert at once.
FLUSH_ROWS = 4_000
#: Rows the journal may hold before appends wait for an insert (the store has fallen behind): ~3 s
#: of median batches at 20,000/s, the longest a DuckDB checkpoint holds inserts (1.5-2.3 s at
#: 512 MB of WAL); ~130 MB of median rows in memory at most. 20,000 until session 11: each
#: checkpoint then turned into a second of 503s.
MAX_HELD = 60_000
#: Seconds between retries of a failed insert.
RETRY = 1.0
#: Seconds an append waits for room in a full journal before it fails.
ROOM_WAIT = 10.0


class JournaledStore:
    """``inner`` behind a journal in ``directory`` (see the module's docs). A :class:`Store`."""

    def __init__(
        self,
        inner: Store,
        directory: str | Path,
        *,
        sync: bool = True,
        quiet: float = QUIET,
        interval: float = INTERVAL,
        flush_rows: int = FLUSH_ROWS,
        max_held: int = MAX_HELD,
    ) -> None:
        self.inner = inner
        self.directory = Path(directory)
        self.sync = sync
        self.quiet = quiet
        self.interval = interval
        self.flush_rows = flush_rows
        self.max_held = max_held
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="journal")
        self._segment: Segment | None = None
        self._number = 0
        #: rows appended to the current segment, not yet taken by a flush
        self._held: list[RowColumns] = []
        #: segments closed by a flush (or found at open) whose rows are not committed yet
        self._closed: list[tuple[Path, list[RowColumns]]] = []
        #: damaged segments found at open: set aside (``.damaged``) once their whole records are stored
        self._damaged: set[Path] = set()
        #: content_hash -> uid of every row in the journal not yet in the store
        self._unstored: dict[str, str] = {}
        self._append_lock = asyncio.Lock()
        self._flush_lock = asyncio.Lock()
        self._room = asyncio.Condition()
        self._wake = asyncio.Event()
        self._last_append = 0.0
        self._task: asyncio.Task[None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None  # the one it was opened on
        self.recovered = 0  # rows an earlier run left in the journal, found by open()
        self.failing = False  # whether the last insert of what the journal holds failed (flush)
        self._lock: int | None = None

    @property
    def held(self) -> int:
        """Rows in the journal not yet in the store."""
        return len(self._unstored)

    # -- lifecycle -----------------------------------------------------------------------------
    async def check(self) -> None:
        await self.inner.check()  # makes nothing (a missing directory is said, not made)
        os.close(await asyncio.to_thread(lock_directory, self.directory))

    async def open(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._lock = await asyncio.to_thread(lock_directory, self.directory)
        try:
            await self.inner.open()
        except BaseException:
            os.close(self._lock)
            self._lock = None
            raise
        found = await asyncio.to_thread(self._recover)
        self._closed.extend(found)
        for _, parts in found:
            for part in parts:
                self._unstored.update(zip(part.content_hashes, part.uids, strict=True))
        self._segment = await self._run(self._new_segment)
        if found:
            self.recovered = sum(len(p) for _, parts in found for p in parts)
            log.warning("the journal held %d measurements not yet stored: storing them", self.recovered)
            try:
                await self.flush()
            except Exception as exc:  # kept in the journal; the flusher retries
                log.error("storing the journal's measurements failed: %s: %.300s", type(exc).__name__, exc)
        self._task = asyncio.create_task(self._flusher(), name="journal-flush")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self.flush()
        except Exception as exc:
            log.error(
                "%d measurements stay in the journal (stored at the next start): %s",
                self.held,
                type(exc).__name__,
            )
        if self._segment is not None:
            segment, self._segment = self._segment, None
            await self._run(self._drop_if_empty, segment)
        self._thread.shutdown(wait=True)
        if self._lock is not None:
            os.close(self._lock)  # the lock goes with it
            self._lock = None
        await self.inner.close()

    async def secret(self) -> bytes:
        return await self.inner.secret()

    async def identity(self) -> str:
        return await self.inner.identity()

    # -- writes --------------------------------------------------------------------------------
    async def existing(
        self, content_hashes: Sequence[str], days: Collection[dt.date] | None = None
    ) -> dict[str, str]:
        found = {h: self._unstored[h] for h in content_hashes if h in self._unstored}
        rest = [h for h in content_hashes if h not in found] if found else content_hashes
        if rest:
            found.update(await self.inner.existing(rest, days))
        return found

    async def insert(self, rows: Sequence[Row] | RowColumns) -> None:
        """Durable on return: in the journal."""
        batch = rows if isinstance(rows, RowColumns) else RowColumns.of_rows(rows)
        if not len(batch):
            return
        if not self._fits(len(batch)):
            # the store has fallen behind (or refuses rows): wait for room, then give up (a 503)
            async with self._room:
                self._wake.set()
                try:
                    async with asyncio.timeout(ROOM_WAIT):
                        await self._room.wait_for(lambda: self._fits(len(batch)))
                except TimeoutError:
                    raise OSError(errno.EAGAIN, "the store is not taking rows: the journal is full") from None
        async with self._append_lock:
            segment = self._segment
            if segment is None:
                raise RuntimeError("journal not opened")
            # encoded here, on the event loop: fewer hand-offs of the GIL than on the journal's thread
            await self._run(segment.append, encode(batch))
            self._held.append(batch)
        self._unstored.update(zip(batch.content_hashes, batch.uids, strict=True))
        self._last_append = asyncio.get_running_loop().time()
        self._wake.set()

    def _fits(self, rows: int) -> bool:
        """Whether ``rows`` more fit under ``max_held``; a group bigger than that (a batch, under a
        ``--max-pending`` above it) fits an empty journal, or it would wait for ever."""
        return self.held + rows <= self.max_held or self.held == 0

    async def flush(self) -> None:
        """Insert everything the journal holds into the store; raises if the store refuses (the
        rows stay in the journal). Whichever it was, :attr:`failing` says so afterwards.

        A caller cancelled meanwhile (a read, the analyser or the flusher as the collector stops)
        does not cancel the flush: the store may commit an insert whose answer nobody waits for
        (ClickHouse does), and the rows, still in the journal, would be inserted again by the next
        flush. That one waits for this one (the flush lock), then finds them stored."""
        task = asyncio.ensure_future(self._flush_noting())
        task.add_done_callback(_retrieved)
        await asyncio.shield(task)

    async def _flush_noting(self) -> None:
        try:
            await self._flush()
        except Exception:
            self.failing = True
            raise
        self.failing = False

    async def _flush(self) -> None:
        async with self._flush_lock:
            async with self._append_lock:
                if self._held:
                    segment = self._segment
                    assert segment is not None
                    self._segment = await self._run(self._new_segment)
                    self._closed.append((segment.path, self._held))
                    self._held = []
                    await self._run(segment.close)
            if not self._closed:
                return
            closed = list(self._closed)
            try:
                await self._store(_rows_of(closed))
            except Exception:
                if len(closed) == 1:
                    raise
                # one segment the store refuses (whatever the cause) must not hold back the others:
                # each on its own, and the ones refused stay for the next try
                failure: Exception | None = None
                stored = []
                for entry in closed:
                    try:
                        await self._store(_rows_of([entry]))
                        stored.append(entry)
                    except Exception as exc:
                        failure = failure or exc
                await self._forget(stored)
                if failure is not None:
                    raise failure from None
                return
            await self._forget(closed)

    async def _forget(self, stored: list[tuple[Path, list[RowColumns]]]) -> None:
        """Segments whose rows are in the store now: out of the journal, and room for appends."""
        self._closed = [e for e in self._closed if not any(e is done for done in stored)]
        for entry in stored:
            for part in entry[1]:
                for h in part.content_hashes:
                    self._unstored.pop(h, None)
        paths = [path for path, _ in stored]
        await self._run(unlink, [p for p in paths if p not in self._damaged])
        for path in (p for p in paths if p in self._damaged):
            await self._run(set_aside, path)
            self._damaged.discard(path)
        async with self._room:
            self._room.notify_all()

    async def _store(self, rows: RowColumns) -> None:
        """Insert ``rows`` less those the store holds already (a replay after a crash that came
        between the store's commit and the segment's deletion)."""
        hashes = rows.content_hashes
        known = await self.inner.existing(list(dict.fromkeys(hashes)), rows.days)
        new = rows.not_in(known, hashes)
        if len(new):
            await self.inner.insert(new)

    async def _flusher(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            started = loop.time()
            # gather: until ingest pauses, the interval is up, or the journal holds enough
            while self.held < self.flush_rows and not self._closed:
                now = loop.time()
                if now - self._last_append >= self.quiet or now - started >= self.interval:
                    break
                await asyncio.sleep(min(self.quiet, self.interval - (now - started)))
            try:
                await self.flush()
            except Exception as exc:
                log.error("store write failed: %s: %.300s", type(exc).__name__, exc)
                await asyncio.sleep(RETRY)
                self._wake.set()

    # -- the journal's files (on its thread) ---------------------------------------------------
    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    def _new_segment(self) -> Segment:
        self._number += 1
        segment = Segment(self.directory / f"{self._number:012d}{SUFFIX}", sync=self.sync)
        if self.sync:
            sync_directory(self.directory)
        return segment

    @staticmethod
    def _drop_if_empty(segment: Segment) -> None:
        segment.close()
        if segment.size == 0:
            unlink([segment.path])

    def _recover(self) -> list[tuple[Path, list[RowColumns]]]:
        """The rows of every segment an earlier run left, oldest first (:func:`left_segments`); a
        damaged one is set aside once its whole records are stored (:meth:`_forget`)."""
        left = left_segments(self.directory)
        self._number = max(self._number, left.last_number)
        self._damaged |= left.damaged
        return left.segments

    # -- reads: everything acknowledged is in the store first -----------------------------------
    async def settle(self) -> None:
        """Store what the journal holds, if anything. Raises if the store refuses it (the flusher
        retries): a read would miss measurements already acknowledged, and answered so (a 200
        without them) it said they were never sent; the collector answers a 503 instead."""
        if self._held or self._closed:
            await self.flush()

    async def get_raw(self, uid: str) -> bytes | None:
        await self.settle()
        return await self.inner.get_raw(uid)

    async def search(
        self, f: Filters, limit: int, offset: int, order: ListOrder = ListOrder()
    ) -> tuple[int, list[dict[str, Any]]]:
        await self.settle()
        return await self.inner.search(f, limit, offset, order)

    async def aggregate(self, f: Filters, axes: list[str], grain: str = "day") -> list[dict[str, Any]]:
        await self.settle()
        return await self.inner.aggregate(f, axes, grain)

    async def delete(self, uid: str) -> bool:
        await self.settle()
        return await self.inner.delete(uid)

    async def raw_batches(self, batch: int) -> AsyncIterator[list[tuple[str, bytes]]]:
        await self.settle()
        async for items in self.inner.raw_batches(batch):
            yield items

    async def update_analysis(self, rows: Sequence[Analysis]) -> None:
        await self.inner.update_analysis(rows)

    @property
    def update_rows(self) -> int:
        return self.inner.update_rows

    @property
    def verdicts_at_ingest(self) -> bool:
        return self.inner.verdicts_at_ingest

    async def forget_findings(self) -> None:
        await self.inner.forget_findings()

    async def unanalysed(self, limit: int) -> list[tuple[str, bytes]]:
        await self.settle()
        found: list[tuple[str, bytes]] = await self.inner.unanalysed(limit)  # type: ignore[attr-defined]
        return found


def _retrieved(task: asyncio.Task[None]) -> None:
    """A shielded flush whose caller was cancelled: its failure is logged by the next flush's
    caller (the flusher retries), not as an exception never retrieved."""
    if not task.cancelled():
        task.exception()


def _rows_of(segments: list[tuple[Path, list[RowColumns]]]) -> RowColumns:
    rows = [r for _, parts in segments for r in parts]
    return RowColumns.concat(rows) if len(rows) > 1 else rows[0]
