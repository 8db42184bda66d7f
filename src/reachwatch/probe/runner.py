"""Measure many URLs: bounded concurrency on one event loop, one JSON line per measurement.

Lines are written as measurements complete (completion order), so output streams. With a
:class:`~reachwatch.probe.submit.Submitter`, each line is first put in its on-disk outbox, and
sent to the collector in the background; the run ends with a bounded final send.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from time import monotonic
from typing import TYPE_CHECKING, Any, TextIO

import orjson

from reachwatch.probe.config import DEFAULT_PARALLEL, ProbeConfig
from reachwatch.probe.control_client import ControlClient
from reachwatch.probe.envelope import Envelope
from reachwatch.probe.measure import measure_url
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


def dumps(measurement: dict[str, Any]) -> str:
    """One compact JSON line (orjson: ~10x cheaper than json.dumps on a measurement)."""
    return orjson.dumps(measurement).decode()


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
    """Measure every target, ``parallel`` at a time; return how many measurements were written.

    Each goes to ``output`` (JSONL) and/or ``submitter`` (outbox first, then the collector).
    """
    items = list(targets)
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(max_workers=min(64, max(4, parallel))))
    envelope = Envelope(cfg)
    decide = load_decide()
    control = None
    if cfg.control_url:
        control = ControlClient(cfg.control_url, parallel=parallel, ca_file=cfg.ca_file)
    queue = iter(items)
    written = 0
    show = sys.stderr.isatty() if progress is None else progress
    bar, task_id = _progress(len(items)) if show else (None, None)

    async def worker() -> None:
        nonlocal written
        for target in queue:
            try:
                measurement = await measure_one(target.url, cfg, envelope, control, decide)
            except Exception as exc:
                print(f"reachwatch: error: measuring {target.url} failed: {exc!r}", file=sys.stderr)
                continue
            line = dumps(measurement)
            if submitter is not None:
                await submitter.put(line.encode())
            if output is not None:
                output.write(line + "\n")
                output.flush()
            written += 1
            if bar is not None and task_id is not None:
                bar.advance(task_id)

    try:
        if submitter is not None:
            submitter.start()
        if bar is not None:
            bar.start()
        await asyncio.gather(*(worker() for _ in range(max(1, min(parallel, len(items))))))
        if bar is not None:
            bar.stop()
            bar = None
        if submitter is not None:
            await submitter.finish(flush_timeout)
    finally:
        if bar is not None:
            bar.stop()
        if control is not None:
            await control.aclose()
        if submitter is not None:
            await submitter.close()
    return written


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


def run_sync(
    targets: Iterable[Target],
    cfg: ProbeConfig,
    output: TextIO | None,
    *,
    parallel: int,
    progress: bool | None,
    submitter: Submitter | None = None,
    flush_timeout: float = DEFAULT_FLUSH_TIMEOUT,
) -> int:
    """Run on uvloop when available (Linux), else the default loop."""
    try:
        import uvloop

        factory: Any = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(
            run(targets, cfg, output, parallel=parallel, progress=progress, submitter=submitter,
                flush_timeout=flush_timeout)
        )  # fmt: skip
