"""The background analysis: verdicts computed after the commit, off the acknowledgement path.

As OONI separates its collector from its fastpath: ingest stores a row with ``analysed`` false and
no verdict (:data:`~reachwatch.store.schema.PENDING_ANALYSIS`); :class:`Analyser` takes such rows
from the store in batches, runs :func:`reachwatch.collector.analysis.verdict` on the stored (scrubbed,
attributed) measurement in a child process, and writes the verdict columns back with ``analysed``
true. The child is niced, so under load acknowledgements keep the CPU and the analysis lags, then
catches up. Nothing is lost by a crash: on start the analyser first takes whatever is unanalysed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol, runtime_checkable

import orjson

from reachwatch.collector import analysis
from reachwatch.store.compression import decompress
from reachwatch.store.schema import Analysis

log = logging.getLogger(__name__)
BATCH = 1_000
NICE = 19
#: Seconds between passes, so that a pass (one scan, one UPDATE) covers many commits under load.
PAUSE = 0.2
#: Seconds without ingest activity (nothing queued or being committed) before a batch is analysed.
QUIET = 0.05
#: Longest a batch waits for such a moment (a tenth of it while behind: the last batch was full).
MAX_DEFER = 5.0


@runtime_checkable
class Backlog(Protocol):
    """A store that can keep rows unanalysed (DuckDB, ClickHouse); others get their verdict at ingest."""

    async def unanalysed(self, limit: int) -> list[tuple[str, bytes]]: ...
    async def update_analysis(self, rows: Sequence[Analysis]) -> None: ...


def analyse_raw(items: Sequence[tuple[str, bytes]]) -> list[Analysis]:
    """The verdict columns of stored rows, from (uid, raw). Runs in the child process."""
    out = []
    for uid, raw in items:
        try:
            out.append(Analysis(uid, *analysis.verdict_values(orjson.loads(decompress(raw)))))
        except Exception as exc:  # an unreadable row gets "no verdict" rather than blocking the queue
            log.warning("cannot analyse a stored measurement: %s", type(exc).__name__)
            out.append(Analysis(uid, None, None, None, None, anomaly=False, failure=True))
    return out


def _init_child() -> None:
    try:  # idle priority: runs only on CPU time no other process wants
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        with contextlib.suppress(OSError):
            os.nice(NICE)
    parent = multiprocessing.parent_process()
    if parent is not None:  # a collector killed with -9 must not leave its analyser behind

        def watch() -> None:
            multiprocessing.connection.wait([parent.sentinel])
            os._exit(0)

        threading.Thread(target=watch, name="parent-watch", daemon=True).start()


_pool: ProcessPoolExecutor | None = None


def _child_pool() -> Executor | None:
    """One idle-priority child process shared by the collectors of this process; None if unavailable."""
    global _pool
    if _pool is None:
        try:
            _pool = ProcessPoolExecutor(
                1, mp_context=multiprocessing.get_context("spawn"), initializer=_init_child
            )
        except (OSError, NotImplementedError, ImportError) as exc:
            log.warning("no analysis process (%s): analysing in a thread", type(exc).__name__)
            return None
    return _pool


def close_pool() -> None:
    """End the analysis process and free its queues (the server's shutdown): without it the
    interpreter exits with the pool's semaphores still registered, and Python's resource tracker
    warns of "leaked semaphore objects". Waits for the batch in hand (at most ~1,000 verdicts).
    The next collector of this process starts a new one."""
    _reset_pool(wait=True)


def _reset_pool(*, wait: bool = False) -> None:
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=wait, cancel_futures=True)
        _pool = None


class Analyser:
    """Analyses what the store holds unanalysed, whenever :meth:`poke`'d (after each commit)."""

    def __init__(
        self,
        store: Backlog,
        *,
        batch: int = BATCH,
        pause: float = PAUSE,
        in_process: bool = False,
        idle_for: Callable[[], float] | None = None,
        quiet: float = QUIET,
        max_defer: float = MAX_DEFER,
    ) -> None:
        """``idle_for``: seconds since ingest was last active (0 while it is): a batch waits until
        that reaches ``quiet``, at most ``max_defer`` seconds."""
        self.store = store
        self.batch = batch
        self.pause = pause
        self.in_process = in_process
        self.idle_for = idle_for
        self.quiet = quiet
        self.max_defer = max_defer
        self._event = asyncio.Event()
        self._wanted = 0  # bumped by every poke
        self._done = 0  # the last poke whose rows are all analysed
        #: the last batch was full: a backlog (an import, a re-analysis) that takes more than a moment
        self.behind = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="analyser")
        self.poke()  # catch up on what an earlier run left

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def poke(self) -> None:
        self._wanted += 1
        self._event.set()

    async def settled(self, timeout: float = 60.0) -> None:
        """Wait until every row committed before this call is analysed."""
        target = self._wanted
        async with asyncio.timeout(timeout):
            while self._done < target:
                await asyncio.sleep(0.005)

    async def _run(self) -> None:
        while True:
            await self._event.wait()
            self._event.clear()
            wanted = self._wanted
            try:
                behind = self.behind = False
                while True:
                    # a full batch means a backlog: then wait a tenth as long, so a sustained load
                    # still gets its verdicts at ~10 batches a second's worth of idle CPU
                    await self._yield_to_ingest(self.max_defer / 10 if behind else self.max_defer)
                    items = await self.store.unanalysed(self.batch)
                    if not items:
                        break
                    behind = self.behind = len(items) >= self.batch
                    await self.store.update_analysis(await self.analyse(items))
            except Exception as exc:  # store or child trouble: the rows stay unanalysed, retry soon
                log.error("background analysis failed: %s", type(exc).__name__)
                if isinstance(exc, BrokenProcessPool):
                    _reset_pool()
                await asyncio.sleep(1.0)
                self._event.set()
                continue
            self._done = wanted
            await asyncio.sleep(self.pause)

    async def _yield_to_ingest(self, longest: float) -> None:
        """Wait for a quiet moment of ingest, at most ``longest`` seconds."""
        if self.idle_for is not None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + longest
            while (idle := self.idle_for()) < self.quiet and loop.time() < deadline:
                await asyncio.sleep(min(self.quiet - idle, max(0.001, deadline - loop.time())))

    async def analyse(self, items: list[tuple[str, bytes]]) -> list[Analysis]:
        """The verdicts of ``items`` (uid, raw), off the event loop: in the analysis child process
        (or a thread)."""
        pool = None if self.in_process else _child_pool()
        if pool is None:
            return await asyncio.to_thread(analyse_raw, items)
        return await asyncio.get_running_loop().run_in_executor(pool, analyse_raw, items)
