"""The background analysis: verdicts computed after the commit, off the acknowledgement path.

As OONI separates its collector from its fastpath: ingest stores a row with ``analysed`` false and
no verdict (:data:`~reachwatch.store.schema.PENDING_ANALYSIS`); :class:`Analyser` takes such rows
from the store in batches, runs :func:`reachwatch.collector.analysis.verdict` on the stored (scrubbed,
attributed) measurement in child processes (one a core, each given a share of a batch), and writes
the verdict columns back with ``analysed`` true. The children run at idle priority, so under load
acknowledgements keep the CPU and the analysis lags, then catches up on every core left idle. Nothing is lost by a crash: on start the analyser first takes whatever is unanalysed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import multiprocessing.context
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol, runtime_checkable

import orjson

from reachwatch.collector import analysis
from reachwatch.runtime import alive, cpu_and_state, usable_cores
from reachwatch.store.compression import decompress
from reachwatch.store.schema import Analysis

log = logging.getLogger(__name__)
BATCH = 1_000
#: Rows a batch takes where the store judges at ingest and its every write of verdicts rewrites the
#: table (ClickHouse: a mutation): only what an older version left unanalysed, caught up in few writes
CATCH_UP_BATCH = 20_000
NICE = 19
#: Seconds between passes, so that a pass (one scan, one UPDATE) covers many commits under load.
PAUSE = 0.2
#: Seconds without ingest activity (nothing queued or being committed) before a batch is analysed.
QUIET = 0.05
#: Longest a batch waits for such a moment (a tenth of it while behind: the last batch was full).
MAX_DEFER = 5.0
#: Seconds the analysis process may take over a batch, plus :data:`TIMEOUT_PER_ROW` a row (1,000
#: median measurements take ~0.15 s, a 16 MB one well under a second), before it is taken for hung
#: (a stopped process, a verdict that never ends), killed by PID and replaced
TIMEOUT = 10.0
TIMEOUT_PER_ROW = 0.05
#: Of a batch's time limit, the CPU time its processes must have used for an overrun to be a hang
#: (:func:`_unless_hung`); with less, they were starved, and the wait goes on
HUNG_SHARE = 0.5
#: Seconds a new analysis process may take to start and answer an empty batch
START_TIMEOUT = 60.0
#: Longest wait before the analysis is tried again after a failure (1 s, then doubling)
RETRY_LONGEST = 60.0
#: Seconds the server's shutdown waits for the batch in the analysis process before killing it
SHUTDOWN_WAIT = 10.0
#: Analysis processes at most: one a core (a backlog after a burst of batches is caught up on every
#: core ingest leaves idle, not on one), each given a share of a batch of at least CHUNK rows
MAX_PROCESSES = 4
CHUNK = 100


@runtime_checkable
class Backlog(Protocol):
    """A store that can keep rows unanalysed (DuckDB, ClickHouse); others get their verdict at ingest."""

    async def unanalysed(self, limit: int) -> list[tuple[str, bytes]]: ...
    async def update_analysis(self, rows: Sequence[Analysis]) -> None: ...


class AnalysisUnavailable(RuntimeError):
    """No analysis process can be started or kept alive: nothing to do with the rows at hand."""


def no_verdict(uid: str) -> Analysis:
    """The verdict columns of a row that cannot be analysed: analysed, with no verdict (a failure,
    never counted as ok), rather than left to block the queue."""
    return Analysis(uid, None, None, None, None, anomaly=False, failure=True)


def analyse_raw(items: Sequence[tuple[str, bytes]]) -> list[Analysis]:
    """The verdict columns of stored rows, from (uid, raw). Runs in the child process."""
    out = []
    for uid, raw in items:
        try:
            out.append(Analysis(uid, *analysis.verdict_values(orjson.loads(decompress(raw)))))
        except Exception as exc:  # an unreadable row gets "no verdict" rather than blocking the queue
            log.warning("cannot analyse a stored measurement: %s", type(exc).__name__)
            out.append(no_verdict(uid))
    return out


def _idle(pid: int) -> None:
    """Process ``pid`` (0: this one) at idle priority: it runs only on CPU time no other process wants."""
    try:
        os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, pid, NICE)


class _IdleProcess(multiprocessing.context.SpawnProcess):
    """An analysis process put at idle priority by the collector as soon as it exists: a new
    interpreter's imports (~0.5 s of CPU) come before the pool's initializer, and at normal priority
    they took ~10 % of 2 cores from the first batches a fresh collector acknowledged."""

    def start(self) -> None:
        super().start()
        if self.pid is not None:
            _idle(self.pid)


class _IdleSpawnContext(multiprocessing.context.SpawnContext):
    Process = _IdleProcess


def _init_child() -> None:
    # a stop signal for the whole process group (systemd, ^C) is the collector's to handle: it
    # lets this process finish its batch, then shuts it down (SHUTDOWN_WAIT)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _idle(0)  # the collector did already (_IdleProcess); a process started otherwise too
    parent = multiprocessing.parent_process()
    if parent is not None:  # a collector killed with -9 must not leave its analyser behind

        def watch() -> None:
            multiprocessing.connection.wait([parent.sentinel])
            os._exit(0)

        threading.Thread(target=watch, name="parent-watch", daemon=True).start()


_pool: ProcessPoolExecutor | None = None


def processes() -> int:
    """How many analysis processes: one a usable core, at most :data:`MAX_PROCESSES`."""
    return max(1, min(MAX_PROCESSES, usable_cores()))


def _child_pool() -> Executor | None:
    """The idle-priority child processes (:func:`processes`, started as batches need them) shared
    by the collectors of this process; None if unavailable."""
    global _pool
    if _pool is None:
        try:
            _pool = ProcessPoolExecutor(processes(), mp_context=_IdleSpawnContext(), initializer=_init_child)
        except (OSError, NotImplementedError, ImportError) as exc:
            log.warning("no analysis process (%s): analysing in a thread", type(exc).__name__)
            return None
    return _pool


def close_pool(wait: float = SHUTDOWN_WAIT) -> None:
    """End the analysis process and free its queues (the server's shutdown): without it the
    interpreter exits with the pool's semaphores still registered, and Python's resource tracker
    warns of "leaked semaphore objects". Waits for the batch in hand (at most ~1,000 verdicts),
    ``wait`` seconds at most: a process that has not finished by then (stopped, hung) is killed
    by PID, so that a stop never hangs on it. The next collector of this process starts a new one."""
    _reset_pool(wait=wait)


def _reset_pool(*, wait: float = 0.0) -> None:
    """Shut the pool down: its process given ``wait`` seconds to finish the batch in hand, then
    killed (by PID) if still alive; 0, at once (a broken or hung pool)."""
    global _pool
    pool, _pool = _pool, None
    if pool is None:
        return
    # private, but Python before 3.14 has no kill_workers(): the pool's processes by PID
    processes = list(getattr(pool, "_processes", None) or {})
    manager = getattr(pool, "_executor_manager_thread", None)  # shutdown() forgets it
    pool.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + wait
    for pid in processes:
        if not _exited(pid, deadline):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            _exited(pid, time.monotonic() + 1.0)  # the signal is delivered, not instantly acted on
    if wait and isinstance(manager, threading.Thread):
        # the pool's own thread reaps the process and closes its queues (else Python's resource
        # tracker warns of leaked semaphores at exit)
        manager.join(max(1.0, deadline - time.monotonic()))


async def _unless_hung(work: asyncio.Future[list[Analysis]], limit: float, pool: Executor) -> list[Analysis]:
    """``work``'s result, or :class:`TimeoutError` once it has run ``limit`` seconds and looks hung:
    its processes used at least :data:`HUNG_SHARE` of that time on the CPU (a verdict that never
    ends), or one is stopped, or none is even waiting for a CPU. Processes that wanted a CPU and
    got little were starved, not hung (idle priority on a machine busy with other work: a
    collector's ingest, a test suite): the wait goes on. Timed out so, a whole batch on a busy
    machine was given "no verdict", row by row (every row of it stored as a failure)."""
    pids = list(getattr(pool, "_processes", None) or {})  # private, as in _reset_pool
    used = sum(cpu for cpu, _ in _looked_at(pids))
    while True:
        try:
            return await asyncio.wait_for(asyncio.shield(work), limit)
        except TimeoutError:
            known = _looked_at(pids)
            now = sum(cpu for cpu, _ in known)
            states = {state for _, state in known}
            starved = now - used < HUNG_SHARE * limit and "R" in states and not states & {"T", "t"}
            if not starved:
                work.cancel()  # its process is killed next (_reset_pool): its end is nobody's
                raise
            used = now


def _looked_at(pids: list[int]) -> list[tuple[float, str]]:
    """(CPU seconds, state) of each of ``pids`` that can be read."""
    return [s for s in map(cpu_and_state, pids) if s is not None]


def _exited(pid: int, deadline: float) -> bool:
    """Whether process ``pid`` (a child of ours, which the pool reaps) has ended by ``deadline``."""
    while alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


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
        timeout: float = TIMEOUT,
        timeout_per_row: float = TIMEOUT_PER_ROW,
        work: Callable[[Sequence[tuple[str, bytes]]], list[Analysis]] = analyse_raw,
    ) -> None:
        """``idle_for``: seconds since ingest was last active (0 while it is): a batch waits until
        that reaches ``quiet``, at most ``max_defer`` seconds. ``work``: what the analysis process
        runs on a batch (a module-level function: it is sent by name)."""
        self.store = store
        self.batch = batch
        self.pause = pause
        self.in_process = in_process
        self.idle_for = idle_for
        self.quiet = quiet
        self.max_defer = max_defer
        self.timeout = timeout
        self.timeout_per_row = timeout_per_row
        self.work = work
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
        failures = 0
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
            except Exception as exc:  # store or system trouble: the rows stay unanalysed, retry
                log.error("background analysis failed: %s", type(exc).__name__)
                failures += 1
                await asyncio.sleep(min(RETRY_LONGEST, 2.0 ** (failures - 1)))
                self._event.set()
                continue
            self._done = wanted
            failures = 0
            await asyncio.sleep(self.pause)

    async def _yield_to_ingest(self, longest: float) -> None:
        """Wait for a quiet moment of ingest, at most ``longest`` seconds."""
        if self.idle_for is not None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + longest
            while (idle := self.idle_for()) < self.quiet and loop.time() < deadline:
                await asyncio.sleep(min(self.quiet - idle, max(0.001, deadline - loop.time())))

    async def analyse(self, items: Sequence[tuple[str, bytes]]) -> list[Analysis]:
        """The verdicts of ``items`` (uid, raw), off the event loop: in the analysis child processes
        (or a thread). A batch that kills the process or outlasts :data:`TIMEOUT` (it is then
        killed) is cut in halves, each analysed by a new process, down to the one row at fault,
        which is given no verdict (:func:`no_verdict`): one measurement that crashes or hangs the
        verdict cannot stop the analysis of the rest, nor make it retry the same batch forever.
        :class:`AnalysisUnavailable` if a new process, given nothing to analyse, fails too: the
        trouble is not the batch's, and its rows stay as they are."""
        pool = None if self.in_process else _child_pool()
        if pool is None:
            return await asyncio.to_thread(analyse_raw, items)
        try:
            return await self._in_child(pool, items)
        except (BrokenProcessPool, TimeoutError) as exc:
            what = "did not finish in time" if isinstance(exc, TimeoutError) else "died"
            _reset_pool()  # killed by PID if hung; the next call starts another
        await self._check_child(what)
        if len(items) == 1:
            log.error("the analysis process %s on one stored measurement: left without a verdict", what)
            return [no_verdict(items[0][0])]
        log.error("the analysis process %s; analysing its batch in halves", what)
        half = len(items) // 2
        return [*await self.analyse(items[:half]), *await self.analyse(items[half:])]

    async def _in_child(
        self, pool: Executor, items: Sequence[tuple[str, bytes]], timeout: float | None = None
    ) -> list[Analysis]:
        """``items`` analysed in the pool's processes, a share each (:data:`CHUNK` rows at least),
        in order. The first failure of any share is raised once all have ended."""
        loop = asyncio.get_running_loop()
        shares = max(1, min(processes(), len(items) // CHUNK))
        size = max(1, -(-len(items) // shares))
        chunks = [items[i : i + size] for i in range(0, len(items), size)] or [items]
        done = await asyncio.gather(
            *(
                _unless_hung(
                    loop.run_in_executor(pool, self.work, chunk),
                    self.timeout + self.timeout_per_row * len(chunk) if timeout is None else timeout,
                    pool,
                )
                for chunk in chunks
            ),
            return_exceptions=True,
        )
        out: list[Analysis] = []
        for part in done:
            if isinstance(part, BaseException):
                raise part
            out += part
        return out

    async def _check_child(self, what: str) -> None:
        """A new analysis process asked to analyse nothing, after one ``what`` (died, timed out):
        :class:`AnalysisUnavailable` unless it answers. It starts (and imports) in this call, so
        that the halves that follow are timed on a process already running."""
        pool = _child_pool()
        try:
            if pool is not None and await self._in_child(pool, (), max(self.timeout, START_TIMEOUT)) == []:
                return
        except (BrokenProcessPool, TimeoutError):
            _reset_pool()
        raise AnalysisUnavailable(f"the analysis process {what}, and so does a new one given nothing to do")
