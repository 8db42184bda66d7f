"""Measure many URLs: bounded concurrency on one event loop, one JSON line per measurement.

Lines are written as measurements complete (completion order), so output streams. With a
:class:`~reachwatch.probe.submit.Submitter`, each line is first put in its on-disk outbox, and
sent to the collector in the background; the run ends with a bounded final send.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import sys
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from time import monotonic
from typing import TYPE_CHECKING, Any, TextIO

import orjson

from reachwatch.collector.privacy import Scrubber
from reachwatch.probe.config import DEFAULT_PARALLEL, MAX_ADDRESSES, ProbeConfig
from reachwatch.probe.control_client import ControlClient
from reachwatch.probe.dns import retry_lost_queries
from reachwatch.probe.envelope import Envelope
from reachwatch.probe.measure import measure_url
from reachwatch.runtime import raise_open_files, settle_gc
from reachwatch.testlists import Target

if TYPE_CHECKING:
    from reachwatch.probe.submit import Submitter

DEFAULT_FLUSH_TIMEOUT = 30.0

Decide = Callable[[dict[str, Any]], Any]


def load_decide() -> Decide | None:
    """``reachwatch.verdict.decide`` once it exists; the probe works without it."""
    try:
        module = importlib.import_module("reachwatch.verdict")
    except ImportError:
        return None
    decide = getattr(module, "decide", None)
    return decide if callable(decide) else None


def add_verdict(measurement: dict[str, Any], decide: Decide | None) -> None:
    if decide is None:
        return
    try:
        measurement["test_keys"].update(decide(measurement).as_test_keys())
    except Exception as exc:  # the verdict is not the probe's: keep the observations
        print(f"reachwatch: warning: verdict failed for {measurement['input']}: {exc!r}", file=sys.stderr)


async def measure_one(
    url: str, cfg: ProbeConfig, envelope: Envelope, control: ControlClient | None, decide: Decide | None
) -> dict[str, Any]:
    started, t0 = datetime.now(UTC), monotonic()
    test_keys = await measure_url(url, cfg, control)
    measurement = envelope.wrap(url, started, monotonic() - t0, test_keys)
    add_verdict(measurement, decide)
    return measurement


Emit = Callable[[bytes], Awaitable[None]]


async def measure_many(
    next_target: Callable[[], Target | None],
    cfg: ProbeConfig,
    envelope: Envelope,
    *,
    parallel: int,
    emit: Emit,
) -> None:
    """Measure targets from ``next_target`` (None: no more), ``parallel`` at a time, on this loop.

    Each finished measurement goes to ``emit`` as one JSON line (bytes, no newline). One process's
    share of the work: :func:`run` calls it in-process, :mod:`reachwatch.probe.workers` in each worker.
    """
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(max_workers=min(64, max(4, parallel))))
    decide = load_decide()
    control = None
    if cfg.control_url:
        control = ControlClient(cfg.control_url, parallel=parallel, ca_file=cfg.ca_file)

    async def worker() -> None:
        while (target := next_target()) is not None:
            try:
                measurement = await measure_one(target.url, cfg, envelope, control, decide)
            except Exception as exc:
                print(f"reachwatch: error: measuring {target.url} failed: {exc!r}", file=sys.stderr)
                continue
            line = orjson.dumps(measurement)
            if control is not None and control.seen_as:
                # the probe's own public address, as the helper saw it, out of everything it
                # writes or sends: the collector scrubs the address it is sent from, which is
                # not this one if the volunteer moved network before the outbox could send
                line = own_scrubber(frozenset(control.seen_as)).json(line)
            await emit(line)

    try:
        await asyncio.gather(*(worker() for _ in range(max(1, parallel))))
    finally:
        if control is not None:
            await control.aclose()


@functools.lru_cache(maxsize=16)
def own_scrubber(addresses: frozenset[str]) -> Scrubber:
    """The scrubbing the collector does (:mod:`reachwatch.collector.privacy`), of the probe's own
    addresses."""
    return Scrubber(sorted(addresses))


class Sink:
    """Where finished lines go: the output file, the collector's outbox, the progress bar."""

    def __init__(
        self, output: TextIO | None, submitter: Submitter | None, total: int, progress: bool | None
    ) -> None:
        self.output = output
        self.submitter = submitter
        self.written = 0
        show = sys.stderr.isatty() if progress is None else progress
        self.bar: Any = None
        self.task_id: Any = None
        if show:
            self.bar, self.task_id = _progress(total)

    async def emit(self, line: bytes) -> None:
        if self.submitter is not None:
            await self.submitter.put(line)
        if self.output is not None:
            self.output.write(line.decode() + "\n")
            self.output.flush()
        self.written += 1
        if self.bar is not None:
            self.bar.advance(self.task_id)

    def start(self) -> None:
        if self.submitter is not None:
            self.submitter.start()
        if self.bar is not None:
            self.bar.start()

    async def finish(self, flush_timeout: float) -> None:
        self.stop_bar()
        if self.submitter is not None:
            await self.submitter.finish(flush_timeout)

    def stop_bar(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    async def close(self) -> None:
        self.stop_bar()
        if self.submitter is not None:
            await self.submitter.close()


async def run(
    targets: Iterable[Target],
    cfg: ProbeConfig,
    output: TextIO | None,
    *,
    parallel: int = DEFAULT_PARALLEL,
    progress: bool | None = None,
    submitter: Submitter | None = None,
    flush_timeout: float = DEFAULT_FLUSH_TIMEOUT,
) -> int:
    """Measure every target in this process, ``parallel`` at a time; return how many were written.

    Each goes to ``output`` (JSONL) and/or ``submitter`` (outbox first, then the collector).
    """
    items = list(targets)
    queue = iter(items)
    sink = Sink(output, submitter, len(items), progress)
    try:
        sink.start()
        await measure_many(
            lambda: next(queue, None), cfg, Envelope(cfg), parallel=min(parallel, len(items)), emit=sink.emit
        )
        await sink.finish(flush_timeout)
    finally:
        await sink.close()
    return sink.written


def _progress(total: int) -> tuple[Any, Any]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("measuring"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    return bar, bar.add_task("measure", total=total)


def new_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when available (Linux), else None: asyncio's default loop."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


#: Open files one measurement may hold at once: its UDP socket, getaddrinfo's (in a thread), a TCP
#: connection to each of up to MAX_ADDRESSES addresses, its connection to the control helper.
FILES_PER_MEASUREMENT = MAX_ADDRESSES + 3
FILES_BASE = 64  # the interpreter's own, the output, the outbox, the pipes to the worker processes


def fit_parallel(parallel: int) -> int:
    """``parallel``, or fewer when the open-files limit cannot be raised far enough (a warning
    says so). Past the limit every socket() fails with EMFILE: measurements would record a local
    error as the network's failure, and a module imported late would crash the run."""
    limit = raise_open_files(parallel * FILES_PER_MEASUREMENT + FILES_BASE)
    fits = max(1, (limit - FILES_BASE) // FILES_PER_MEASUREMENT)
    if fits >= parallel:
        return parallel
    print(
        f"reachwatch: warning: measuring {fits} URLs at once, not {parallel}: the open-files limit "
        f"is {limit} (ulimit -n); {parallel} need {parallel * FILES_PER_MEASUREMENT + FILES_BASE}",
        file=sys.stderr,
    )
    return fits


def run_sync(
    targets: Iterable[Target],
    cfg: ProbeConfig,
    output: TextIO | None,
    *,
    parallel: int,
    progress: bool | None,
    submitter: Submitter | None = None,
    flush_timeout: float = DEFAULT_FLUSH_TIMEOUT,
    workers: int = 1,
) -> int:
    """Measure in this process (``workers`` 1) or in that many worker processes; lines written."""
    items = list(targets)
    settle_gc()
    parallel = fit_parallel(parallel)
    retry_lost_queries(cfg.timeouts.dns)
    if workers > 1 and len(items) > 1:
        from reachwatch.probe.workers import run_workers

        return run_workers(items, cfg, output, parallel=parallel, progress=progress, submitter=submitter,
                           flush_timeout=flush_timeout, workers=workers)  # fmt: skip
    with asyncio.Runner(loop_factory=new_loop_factory()) as runner:
        return runner.run(
            run(items, cfg, output, parallel=parallel, progress=progress, submitter=submitter,
                flush_timeout=flush_timeout)
        )  # fmt: skip
