"""The group commit: staged measurements (:mod:`reachwatch.collector.prepare`) to stored rows.

:meth:`Ingestor.stage` validates, attributes and scrubs one measurement in the request (every 4xx
is decided there) and :meth:`Ingestor.submit` queues it for the group commit, in two stages: a
group's hashing and zstd compression (:func:`~reachwatch.collector.finish.finish_rows`), then
its insert (all finished groups waiting go in one statement), so that group N+1 is finished while
N is inserted. A big group is finished on a thread of its own, off the event loop; a small one (up
to ``small_group`` measurements: single posts) on the loop itself, where it costs less than the
GIL's hand-offs to and from that thread. Every request's answer waits
until its rows are durable: the store's commit, or, in front of a DuckDB file, the journal's append
(:mod:`reachwatch.store.journal`). The queue is bounded: past ``max_pending`` measurements, those
a journal holds included, a request gets :class:`Overloaded` (503 + Retry-After).

The verdict is not on that path when the store can hold rows unanalysed and update them cheaply
(DuckDB): rows are stored with ``analysed`` false and
:class:`~reachwatch.collector.analyser.Analyser` fills the verdict in after the commit. A store
without that backlog, or whose updates rewrite whole parts (ClickHouse), gets it at ingest.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from reachwatch.collector.analyser import BATCH, CATCH_UP_BATCH, Analyser, Backlog
from reachwatch.collector.attribution import Attributor, Network
from reachwatch.collector.config import MAX_PENDING
from reachwatch.collector.deadlines import for_loop
from reachwatch.collector.finish import Staged, finish, finish_rows
from reachwatch.collector.http import ApiError, bodies_full
from reachwatch.collector.prepare import stage
from reachwatch.collector.url_lists import Categories
from reachwatch.collector.vantage import Vantages
from reachwatch.store import Store
from reachwatch.store.schema import Row, RowColumns

log = logging.getLogger(__name__)


def _finish_all(batch: list[tuple[list[Staged], Any]]) -> RowColumns:
    """The rows of all the group's requests, in order, as one table."""
    return finish_rows([s for items, _ in batch for s in items])


Requests = list[tuple[list[Staged], "asyncio.Future[list[str]]"]]
#: A finished group on its way to the insert: the requests, their rows (in request order), how many
#: rows each request has.
Finished = tuple[Requests, RowColumns, list[int]]


class Overloaded(ApiError):
    def __init__(self, retry_after: int = 1, message: str = "collector busy, retry later") -> None:
        super().__init__(503, message, headers={"Retry-After": str(retry_after)})


#: Longest a read waits for the verdicts of what was just acknowledged (:meth:`Ingestor.verdicts_for_a_read`).
READ_WAIT = 1.0
#: Seconds a failed store write counts as the store failing, for :meth:`Ingestor.health`.
FAILING_FOR = 10.0
#: What a request hears when its rows could not be stored (disk full, ClickHouse down). DuckDB kept
#: none of them (one transaction); ClickHouse may have kept some (an insert over several days is a
#: part per day, each committed alone: an outside check, session 15, found a batch answered
#: "nothing was kept" half stored). Either way a resend stores each once.
STORE_FAILED = (
    "the collector could not store these measurements (storage error); send them again later "
    "(any it kept are not stored twice)"
)
#: Longest a request waits for its commit before a 503: a store that stalls (ClickHouse stopped,
#: not down) held requests until the store client's own 60 s timeout, as long as a probe's (the
#: outbox's) and past many proxies'. The rows stay queued and may be stored later; the writer
#: commits one group at a time, so a resend is checked against them once they are in.
STORE_WAIT = 20.0
STORE_SLOW = (
    f"the collector's store has not taken these measurements in {STORE_WAIT:g} s; send them again "
    "later (any it kept are not stored twice)"
)


async def answer(fut: asyncio.Future[list[str]]) -> list[str]:
    """The uids ``fut`` gets once its rows are committed, or a 503 after :data:`STORE_WAIT` (a
    deadline of the loop's sweep, not a timer per request). No shield needed: a request given up
    (or cancelled) leaves its rows queued, and the writer skips answering a future that is done."""
    waits = for_loop(fut.get_loop(), "store", _store_slow)
    waits.start(fut, STORE_WAIT)
    try:
        return await fut
    finally:
        waits.stop(fut)


_slow_logged = 0.0


def _store_slow(fut: asyncio.Future[list[str]]) -> None:
    global _slow_logged
    if not fut.done():
        fut.set_exception(Overloaded(5, STORE_SLOW))
        if time.monotonic() - _slow_logged > FAILING_FOR:  # once, not once a request
            _slow_logged = time.monotonic()
            log.error("the store took more than %g s to commit: requests answered 503", STORE_WAIT)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class Ingestor:
    def __init__(
        self,
        store: Store,
        attributor: Attributor,
        secret: bytes,
        *,
        identity: str,
        max_pending: int = MAX_PENDING,
        max_batch: int = 2_000,
        commit_delay: float = 0.002,
        small_group: int = 100,
        background_analysis: bool | None = None,
    ) -> None:
        """``background_analysis``: verdicts after the commit (default: when the store can, and
        its updates are cheap: not :attr:`~reachwatch.store.Store.verdicts_at_ingest`). A store
        that judges at ingest but can hold rows unanalysed still gets an analyser: for the rows an
        older version left so (caught up at start) and a re-analysis' processes.
        ``commit_delay``: how long a group commit that starts with fewer than ``small_group``
        measurements waits for more (single posts) before it is written."""
        at_ingest = bool(getattr(store, "verdicts_at_ingest", False))
        if background_analysis is None:
            background_analysis = isinstance(store, Backlog) and not at_ingest
        #: rows get their verdict at ingest (prepare.stage), not from the analyser after the commit
        self.verdict_now = not background_analysis
        self.analyser = (
            Analyser(store, idle_for=self.idle_for, batch=BATCH if background_analysis else CATCH_UP_BATCH)
            if isinstance(store, Backlog) and (background_analysis or at_ingest)
            else None
        )
        self.store = store
        self.attributor = attributor
        self.secret = secret
        self.identity = identity
        self.vantages = Vantages()
        #: the test lists' categories for rows that name none (``--test-lists``), or None
        self.categories: Categories | None = None
        self.max_pending = max_pending
        self.max_batch = max_batch
        self.commit_delay = commit_delay
        self.small_group = small_group
        self._queue: asyncio.Queue[tuple[list[Staged], asyncio.Future[list[str]]]] = asyncio.Queue()
        #: while a small group waits for the posts in flight (:meth:`_gather`): done once
        #: ``_gather_until`` requests are queued behind its first
        self._gathering: asyncio.Future[None] | None = None
        self._gather_until = 0
        #: requests in the last group finished
        self._last_requests = 0
        self._finished: asyncio.Queue[Finished] = asyncio.Queue()
        self._finisher: ThreadPoolExecutor | None = None
        self._pending = 0
        #: when the last write to the store (or its journal) failed, if the last one did
        self._store_failed_at: float | None = None
        #: when the commit under way began (None between commits): a stalled store shows in health
        self._committing_since: float | None = None
        self._last_active = time.monotonic()
        self._tasks: tuple[asyncio.Task[None], asyncio.Task[None]] | None = None

    # -- per measurement -----------------------------------------------------------------------
    def network(self, submitter: str) -> Network:
        return self.attributor.lookup(submitter) if self.attributor.enabled else Network()

    def vantage(self, submitter: str) -> str | None:
        """The submitter's vantage point, hashed with today's key (:mod:`~reachwatch.collector.vantage`)."""
        return self.vantages.of(submitter, dt.datetime.now(dt.UTC))

    def prepare(
        self,
        m: Any,
        *,
        submitter: str,
        network: Network,
        report_id: str | None = None,
        where: str = "measurement",
    ) -> Row:
        """The stored row for ``m`` (:meth:`stage` and :func:`finish` in one go)."""
        return finish(self.stage(m, submitter=submitter, network=network, report_id=report_id, where=where))

    def stage(
        self,
        m: Any,
        *,
        submitter: str,
        network: Network,
        report_id: str | None = None,
        where: str = "measurement",
    ) -> Staged:
        """:func:`stage` with this collector's secret and analysis mode, counted as from the
        submitter's vantage point."""
        return stage(
            m,
            secret=self.secret,
            verdict_now=self.verdict_now,
            submitter=submitter,
            network=network,
            report_id=report_id,
            where=where,
            identity=self.identity,
            vantage=self.vantage(submitter),
        )

    # -- group commit --------------------------------------------------------------------------
    async def submit(self, rows: Sequence[Staged]) -> list[str]:
        """Store ``rows`` (all or nothing); their uids in order, an earlier uid for a duplicate."""
        return await answer(self.enqueue(rows))

    def enqueue(self, rows: Sequence[Staged]) -> asyncio.Future[list[str]]:
        """:meth:`submit` without the wait: the future of the rows' uids (:func:`answer` waits for
        it); :class:`Overloaded` at once when the collector is full."""
        fut = self._admit(len(rows))
        self._queue.put_nowait((list(rows), fut))
        gathering = self._gathering
        if gathering is not None and self._queue.qsize() >= self._gather_until and not gathering.done():
            gathering.set_result(None)
        return fut

    async def submit_rows(self, rows: RowColumns) -> list[str]:
        """:meth:`submit` for rows already finished (by a batch worker process): straight to the
        insert stage, acknowledged with its commit."""
        fut = self._admit(len(rows))
        self._finished.put_nowait(([([], fut)], rows, [len(rows)]))
        return await answer(fut)

    def submit_posts(self, rows: RowColumns) -> list[asyncio.Future[list[str]]]:
        """Rows a batch worker finished for single posts (:mod:`~reachwatch.collector.post_lane`),
        one a post, straight to the insert stage: a future per row, in order, that gets its uid
        once committed (:func:`answer`). Room was checked as each post came (:meth:`check_room`)."""
        if self._tasks is None:
            raise RuntimeError("ingestor not started")
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[list[str]]] = [loop.create_future() for _ in range(len(rows))]
        self._pending += len(rows)
        self._finished.put_nowait(([([], f) for f in futures], rows, [1] * len(futures)))
        return futures

    def _admit(self, count: int) -> asyncio.Future[list[str]]:
        """The future of ``count`` more pending measurements; :class:`Overloaded` past the bound."""
        if self._tasks is None:
            raise RuntimeError("ingestor not started")
        self.check_room(count)
        self._pending += count
        return asyncio.get_running_loop().create_future()

    def check_room(self, count: int, coming: int = 0) -> None:
        """Whether ``count`` more measurements fit under ``max_pending``, with ``coming`` more on
        their way (a batch pool's): a 413 for more than ever fit, else :class:`Overloaded`."""
        if count > self.max_pending:  # a 503 to retry would be answered forever
            raise ApiError(
                413,
                f"a batch of {count} measurements is more than this collector holds at once "
                f"(--max-pending {self.max_pending}): send at most {self.max_pending} lines per batch",
            )
        if self._in_hand() + count + coming > self.max_pending:
            raise Overloaded()

    def _in_hand(self) -> int:
        """Measurements waiting for their commit, and those a journal holds (acknowledged, not yet
        in the store): a store that falls behind is answered 503 at once, not after a wait."""
        return self._pending + getattr(self.store, "held", 0)

    def health(self) -> dict[str, Any]:
        """What an operator or a load balancer needs to know, without touching the store: how
        much is waiting, and whether writes are failing or the collector is full."""
        held = getattr(self.store, "held", None)
        failed = self._store_failed_at
        # a failure is news for FAILING_FOR seconds: no write may come to clear it (clients back off)
        recent = failed is not None and time.monotonic() - failed < FAILING_FOR
        # a commit that has run past STORE_WAIT (its requests answered 503) is a failing store too
        since = self._committing_since
        stalled = since is not None and time.monotonic() - since > STORE_WAIT
        failing = recent or stalled or bool(getattr(self.store, "failing", False))
        # or the bytes of bodies on their way fill their budget (http.BODY_BUDGET)
        full = self._in_hand() >= self.max_pending or bodies_full()
        return {
            "status": "store failing" if failing else "busy" if full else "ok",
            "pending": self._pending,
            "journal": held,
            "max_pending": self.max_pending,
        }

    def idle_for(self) -> float:
        """Seconds since ingest last had work (nothing queued or being committed); 0 while it has."""
        return 0.0 if self._pending else time.monotonic() - self._last_active

    def start(self) -> None:
        self._finisher = ThreadPoolExecutor(1, thread_name_prefix="ingest-finish")
        self._tasks = (
            asyncio.create_task(self._finish_groups(), name="ingest-finish"),
            asyncio.create_task(self._write_groups(), name="ingest-writer"),
        )
        if self.analyser is not None:
            self.analyser.start()

    async def stop(self) -> None:
        if self._tasks is not None:
            while self._pending:
                await asyncio.sleep(0.01)
            for task in self._tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self._tasks = None
        if self._finisher is not None:
            self._finisher.shutdown(wait=False)
        if self.analyser is not None:
            await self.analyser.stop()

    async def settled(self) -> None:
        """Wait until every measurement acknowledged so far has its verdict (tests, admin)."""
        if self.analyser is not None:
            await self.analyser.settled()

    async def verdicts_for_a_read(self, longest: float = READ_WAIT) -> None:
        """Before a read, while ingest has nothing in hand: wait (at most ``longest`` seconds) for
        the verdicts of what was acknowledged, so that a measurement read or counted right after
        its 2xx is not counted as a failure for the ~0.3 s its analysis takes. Under load (rows
        pending), or with a backlog that takes longer (an import), a read answers at once, the rows
        not yet analysed counted as failures."""
        if self.analyser is None or self.verdict_now or self._pending or self.analyser.behind:
            return
        with contextlib.suppress(TimeoutError):
            await self.analyser.settled(timeout=longest)

    # Two stages, so that group N+1 is hashed and compressed while group N is inserted: the first
    # gathers a group (waiting ``commit_delay`` for a small one) and finishes it on the finisher
    # thread; the second takes every finished group waiting and inserts them in one statement (a
    # statement's fixed cost is most of DuckDB's, so statements stay as few as with one stage).
    async def _finish_groups(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            size = len(batch[0][0])
            if size < self.small_group and self.commit_delay > 0:
                await self._gather(loop)
            while size < self.max_batch and not self._queue.empty():
                item = self._queue.get_nowait()
                batch.append(item)
                size += len(item[0])
            try:
                if size <= self.small_group:
                    # a small group (single posts) on the event loop itself: ~35 us a row, at most
                    # ~4 ms; on the thread, the hand-offs of the GIL cost more than they overlapped
                    finished = _finish_all(batch)
                else:
                    finished = await loop.run_in_executor(self._finisher, _finish_all, batch)
            except Exception as exc:
                log.error("finishing rows failed: %s", type(exc).__name__)
                self._fail(batch, size)
                continue
            self._finished.put_nowait((batch, finished, [len(items) for items, _ in batch]))
            self._last_requests = len(batch)

    async def _gather(self, loop: asyncio.AbstractEventLoop) -> None:
        """Let the posts in flight join a small group (docs/collector.md, "Performance"): wait
        ``commit_delay``, or less: until as many requests are queued as the last group had. A
        closed loop of N clients sends N posts once answered; waiting the whole delay for them made
        each post's answer late by it (16 clients: 2,300-2,440 posts/s against 2,730-3,460 so).
        A lone post still waits the whole delay for company."""
        want = min(self._last_requests, self.small_group) - 1  # its first request is in hand
        if want < 1:
            want = self.max_pending + 1  # never: the whole delay
        elif self._queue.qsize() >= want:
            return
        fut = self._gathering = loop.create_future()
        self._gather_until = want
        timer = loop.call_later(self.commit_delay, _resolve, fut)
        try:
            await fut
        finally:
            timer.cancel()
            self._gathering = None

    async def _write_groups(self) -> None:
        while True:
            groups = [await self._finished.get()]
            size = len(groups[0][1])
            while size < self.max_batch and not self._finished.empty():
                groups.append(self._finished.get_nowait())
                size += len(groups[-1][1])
            batch = [item for b, _, _ in groups for item in b]
            rows = RowColumns.concat([r for _, r, _ in groups])
            if self.categories is not None:
                rows = self.categories.fill(rows)
            lengths = [n for _, _, ns in groups for n in ns]
            self._committing_since = time.monotonic()
            try:
                await self._commit(batch, rows, lengths)
                self._store_failed_at = None
            except Exception as exc:
                # the store's own message (no submitter address is ever in a row), for the operator
                log.error("store write failed: %s: %.300s", type(exc).__name__, exc)
                self._store_failed_at = time.monotonic()
                self._fail(batch, 0, STORE_FAILED)
            finally:
                self._committing_since = None
                self._done(size)

    def _fail(
        self,
        batch: list[tuple[list[Staged], asyncio.Future[list[str]]]],
        size: int,
        message: str = "collector busy, retry later",
    ) -> None:
        for _, fut in batch:
            if not fut.done():
                fut.set_exception(Overloaded(2, message))
        if size:
            self._done(size)

    def _done(self, size: int) -> None:
        self._pending -= size
        self._last_active = time.monotonic()

    async def _commit(self, batch: Requests, group: RowColumns, lengths: list[int]) -> None:
        """Insert the rows not stored yet; answer each request with its uids (earlier ones for
        duplicates)."""
        hashes = group.content_hashes
        known = await self.store.existing(list(dict.fromkeys(hashes)), group.days)
        new = group.not_in(known, hashes)
        await self.store.insert(new)
        if len(new) and self.analyser is not None and not self.verdict_now:
            self.analyser.poke()
        start = 0
        for n, (_, fut) in zip(lengths, batch, strict=True):
            end = start + n
            if not fut.done():
                fut.set_result([known[h] for h in hashes[start:end]])
            start = end
