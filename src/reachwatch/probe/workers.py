"""Measure with several worker processes: one event loop per core instead of one in all.

A probe is CPU-bound long before the network is (TLS handshakes, DNS parsing, HTTP framing, the
verdict): one event loop uses one core. The parent forks ``workers`` children before it starts
any loop or thread. Each child runs :func:`~reachwatch.probe.runner.measure_many` with its share
of ``--parallel`` and takes the next target from a counter in shared memory (so a worker stuck on
timeouts does not hold a fixed slice of the list); it writes each finished measurement as one
line to a pipe. The parent reads the pipes and is the only writer of the output, the outbox and
the progress bar. All measurements of a run share one report id (the envelope is made before the
fork). A worker that dies loses only the URLs it had in flight; the parent says how many were not
measured and the command exits non-zero.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from reachwatch.errors import UserError
from reachwatch.probe.config import ProbeConfig
from reachwatch.probe.envelope import Envelope
from reachwatch.probe.runner import DEFAULT_FLUSH_TIMEOUT, Sink, measure_many, new_loop_factory
from reachwatch.runtime import usable_cores
from reachwatch.testlists import Target

if TYPE_CHECKING:
    from reachwatch.probe.submit import Submitter

MAX_LINE = 256 * 1024 * 1024  # a measurement with 11 hops of 512 KiB bodies, JSON-escaped, fits
PIPE_SIZE = 1024 * 1024
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
MIN_TARGETS_PER_WORKER = 32  # below this a second process costs more than it saves


def default_workers(n_targets: int) -> int:
    """One worker per usable core (at most 4), fewer for short lists."""
    return max(1, min(usable_cores(), 4, n_targets // MIN_TARGETS_PER_WORKER))


def run_workers(
    items: list[Target],
    cfg: ProbeConfig,
    output: TextIO | None,
    *,
    parallel: int,
    progress: bool | None,
    submitter: Submitter | None = None,
    flush_timeout: float = DEFAULT_FLUSH_TIMEOUT,
    workers: int,
) -> int:
    """Fork ``workers`` measuring processes, relay their lines; return how many were written."""
    workers = max(1, min(workers, parallel, len(items)))
    envelope = Envelope(cfg)
    counter = multiprocessing.get_context("fork").Value("q", 0)

    def next_target() -> Target | None:
        with counter.get_lock():
            index = counter.value
            counter.value = index + 1
        return items[index] if index < len(items) else None

    if output is not None:
        output.flush()
    sys.stderr.flush()
    children: list[tuple[int, int]] = []  # (pid, read end of its pipe)
    finished = False
    try:
        for number in range(workers):
            share = parallel // workers + (1 if number < parallel % workers else 0)
            children.append(_fork(next_target, cfg, envelope, share))
        with asyncio.Runner(loop_factory=new_loop_factory()) as runner:
            written = runner.run(_relay([fd for _, fd in children], output, submitter, len(items),
                                        progress, flush_timeout))  # fmt: skip
        finished = True
    finally:
        statuses = _reap([pid for pid, _ in children], terminate=not finished)
    failed = [status for status in statuses if status != 0]
    if failed:
        raise UserError(
            f"{len(failed)} of {workers} probe worker processes failed (exit status "
            f"{', '.join(map(str, failed))}); {len(items) - written} of {len(items)} URLs were not measured",
            fix="the measurements written are complete; run the rest again (see the errors above)",
        )
    return written


def _fork(
    next_target: Callable[[], Target | None], cfg: ProbeConfig, envelope: Envelope, parallel: int
) -> tuple[int, int]:
    read_fd, write_fd = os.pipe()
    with contextlib.suppress(OSError):  # a larger pipe: fewer wake-ups of the parent
        fcntl.fcntl(write_fd, F_SETPIPE_SZ, PIPE_SIZE)
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_fd)
        _child(next_target, cfg, envelope, parallel, write_fd)
    os.close(write_fd)
    return pid, read_fd


def _child(
    next_target: Callable[[], Target | None], cfg: ProbeConfig, envelope: Envelope, parallel: int, fd: int
) -> None:
    status = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C: the parent reports, the child just ends

        async def emit(line: bytes) -> None:
            data = memoryview(line + b"\n")
            while data:
                data = data[os.write(fd, data) :]

        with asyncio.Runner(loop_factory=new_loop_factory()) as runner:
            runner.run(measure_many(next_target, cfg, envelope, parallel=parallel, emit=emit))
    except BaseException as exc:  # a child must end here, whatever happened
        if not isinstance(exc, (KeyboardInterrupt, BrokenPipeError)):
            print(f"reachwatch: error: a probe worker failed: {exc!r}", file=sys.stderr)
        status = 1
    finally:
        with contextlib.suppress(OSError):
            sys.stderr.flush()
        os._exit(status)  # no atexit handlers, no flush of the parent's buffers


async def _relay(
    fds: list[int],
    output: TextIO | None,
    submitter: Submitter | None,
    total: int,
    progress: bool | None,
    flush_timeout: float,
) -> int:
    sink = Sink(output, submitter, total, progress)
    loop = asyncio.get_running_loop()

    async def drain(fd: int) -> None:
        reader = asyncio.StreamReader(limit=MAX_LINE)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", 0))
        while line := await reader.readline():
            if line.endswith(b"\n"):  # a line cut short by a dying worker is not a measurement
                await sink.emit(line[:-1])

    try:
        sink.start()
        await asyncio.gather(*(drain(fd) for fd in fds))
        await sink.finish(flush_timeout)
    finally:
        await sink.close()
    return sink.written


def _reap(pids: list[int], *, terminate: bool) -> list[int]:
    """Wait for every child, first ending those still running if ``terminate``; exit statuses."""
    statuses: list[int] = []
    for pid in pids:
        try:
            if terminate:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            status = 0
        statuses.append(os.waitstatus_to_exitcode(status))
    return statuses
