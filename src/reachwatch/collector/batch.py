"""A batch of JSON lines to rows: in the request's process, or in worker processes for big batches.

Parsing, validating, attributing, scrubbing, hashing and compressing a batch line is ~80 µs of
CPU, most of it holding the GIL: one collector process tops out near 10,000 lines/s whatever the
cores. Batches of at least :data:`POOLED_LINES` lines are therefore staged and finished in a pool
of worker processes (``--ingest-workers``, default one per core), which send back each row's
column values; the collector's own process keeps only HTTP, the rate limit, the duplicate check,
the insert and the acknowledgement, so a measurement is still acknowledged only once committed.
The submitter's address reaches a worker in memory, for scrubbing, and is never written anywhere.
The workers are child processes (``python -m reachwatch.collector.batch``) that read requests on
their stdin and answer on their stdout, one at a time, as frames: a small pickled header (between
this collector's own processes only), while the bulk bytes, the batch piece one way and the Arrow
IPC rows the other, go through memory shared with that worker (:class:`Shared`; the frame's bulk
on the pipe when rows do not fit); the collector's secret comes first, on stdin, never on the
command line. A worker exits when its stdin closes, so none outlives the collector, even after ``kill -9``; it
ignores SIGTERM and SIGINT, which a stop of the whole process group sends it too, so that the
batches in hand are finished while the collector shuts down gracefully.
A worker that dies fails only the batch it held, with a 503 and ``Retry-After`` (nothing of it was
stored), and is replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mmap
import os
import pickle
import signal
import sys
from typing import Any

from reachwatch.collector.attribution import Network
from reachwatch.collector.batch_lines import EMPTY_BATCH, lines_of, pieces, rejected
from reachwatch.collector.finish import finish_rows
from reachwatch.collector.frames import SIZES, frame, read_frame, write_frame
from reachwatch.collector.http import ApiError
from reachwatch.collector.ingest import Overloaded
from reachwatch.collector.post_rows import POSTS, Item, post_rows
from reachwatch.collector.prepare import stage_lines
from reachwatch.collector.shared import Shared
from reachwatch.runtime import settle_gc, usable_cores
from reachwatch.store.schema import RowColumns

log = logging.getLogger(__name__)

#: Smaller batches are staged in the request's process: a round trip to a worker costs ~0.3 ms.
POOLED_LINES = 32
#: ... unless they are this big: a few huge lines (or one) are staged in a worker too, so that no
#: one request's content (a pathological one takes seconds to scrub) holds the event loop
POOLED_BYTES = 256 << 10
#: Seconds a worker may take over one piece (a 16 MB body takes well under one) before it is taken
#: for hung (stopped, say), killed and replaced, and its batch answered 503 instead of never
CALL_TIMEOUT = 30.0


# -- in a worker process ---------------------------------------------------------------------------


def rows_of(
    body: bytes | mmap.mmap,
    *,
    first: int,
    secret: bytes,
    verdict_now: bool,
    submitter: str,
    network: Network,
    identity: str,
    size: int | None = None,
    vantage: str | None = None,
) -> tuple[Any, bytes]:
    """(None, rows) or (errors, b"") for the lines of ``body[:size]`` (numbered from ``first``): the
    finished rows as Arrow IPC bytes (:class:`~reachwatch.store.schema.RowColumns`)."""
    lines = lines_of(body, first, size)
    staged, errors = stage_lines(
        lines,
        secret=secret,
        verdict_now=verdict_now,
        submitter=submitter,
        network=network,
        identity=identity,
        vantage=vantage,
    )
    if errors:
        return errors, b""
    return None, finish_rows(staged, keep_gil=False).to_ipc()


def worker_main() -> None:
    """The worker's loop: (secret, identity, verdict_now, shared memory fd or None) first, then
    requests, each ending with where its bulk is (``(length, shared size)`` in the shared memory, or
    None for the frame's bulk): a batch's piece, (first line number, submitter, vantage, asn, name,
    cc, where), or single posts, (:data:`POSTS`, items, where) (:func:`post_rows`). Answers (failure,
    length of the rows in the shared memory or None for the frame's bulk): for posts, the failure
    is the list of those refused."""
    # buffered whatever PYTHONUNBUFFERED says: read(n) returns n bytes unless at the end
    stdin = open(sys.stdin.fileno(), "rb", closefd=False)  # noqa: SIM115 (the loop's whole life)
    stdout = sys.stdout.fileno()
    sys.stdout = sys.stderr  # nothing but frames on the real stdout
    # a stop signal for the whole process group (systemd's default KillMode, ^C in a terminal) is
    # the collector's to handle: it finishes the batches in hand, then closes our stdin (we exit)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    settle_gc()  # every line parses into hundreds of short-lived containers
    try:
        (secret, identity, verdict_now, shared_fd), _ = read_frame(stdin)
        shared: Shared | None = None
        while True:
            request, bulk = read_frame(stdin)
            where = request[-1]
            body: bytes | mmap.mmap = bulk
            size = None
            if where is not None:
                size, mapped = where
                if shared is None:
                    shared = Shared(mapped, shared_fd)
                elif len(shared) < mapped:
                    shared.remap(mapped)
                body = shared.map
            failure: Any
            try:
                if request[0] == POSTS:  # (POSTS, items, where): single posts (post_lane)
                    failure, rows = post_rows(
                        body, request[1], secret=secret, verdict_now=verdict_now, identity=identity
                    )
                else:
                    first, submitter, vantage, asn, name, cc, _ = request
                    failure, rows = rows_of(
                        body,
                        first=first,
                        secret=secret,
                        verdict_now=verdict_now,
                        submitter=submitter,
                        network=Network(asn=asn, name=name, cc=cc),
                        size=size,
                        identity=identity,
                        vantage=vantage,
                    )
            except Exception as exc:  # a bug: say which, never what (the batch holds addresses)
                failure, rows = type(exc).__name__, b""
            del body, bulk
            if where is not None and shared is not None and 0 < len(rows) <= len(shared):
                shared.map[: len(rows)] = rows
                write_frame(stdout, (failure, len(rows)))
            else:
                write_frame(stdout, (failure, None), rows)
    except (EOFError, BrokenPipeError):
        return


# -- in the collector ------------------------------------------------------------------------------
def default_workers() -> int:
    """One per core, at most 4; none on a single core (the pool would only add round trips)."""
    cores = usable_cores()
    return 0 if cores < 2 else min(cores, 4)


class _Worker:
    def __init__(self, process: asyncio.subprocess.Process, shared: Shared | None) -> None:
        self.process = process
        self.shared = shared
        assert process.stdin is not None and process.stdout is not None
        self.stdin, self.stdout = process.stdin, process.stdout

    @property
    def dead(self) -> bool:
        """Whether it has exited (killed while idle, say) or its stdin is closed: no use calling it."""
        return self.process.returncode is not None or self.stdin.is_closing()

    async def send(self, header: Any, bulk: bytes | memoryview = b"") -> None:
        """One frame to the worker; :class:`BrokenPipeError` if it is gone. uvloop's pipe raises
        RuntimeError ("the handler is closed") on a write once the worker has exited, which the pool
        would not take for a dead worker: every batch that met it was then a 500."""
        if self.stdin.is_closing():
            raise BrokenPipeError("the batch worker's stdin is closed")
        try:
            for part in frame(header, bulk):  # not writelines: a pipe's joins the parts (a copy)
                self.stdin.write(part)
        except RuntimeError as exc:
            raise BrokenPipeError(f"the batch worker's stdin is closed: {exc}") from None
        await self.stdin.drain()

    async def call(self, header: tuple[Any, ...], piece: memoryview) -> tuple[Any, bytes]:
        """The piece through the shared memory, the request's ``header`` through the pipe; the
        answer: (the worker's failure or None, the rows' bytes). Without shared memory (a system
        without memfd_create), the piece and the rows travel in the frames' bulk.
        :class:`BrokenPipeError` for a worker already stopped (one that could not be replaced):
        its shared memory is closed too."""
        if self.dead:
            raise BrokenPipeError("the batch worker has exited")
        if self.shared is None:
            await self.send((*header, None), piece)
        else:
            self.shared.fit(len(piece))
            self.shared.map[: len(piece)] = piece
            await self.send((*header, (len(piece), len(self.shared))))
        head_size, bulk_size = SIZES.unpack(await self.stdout.readexactly(SIZES.size))
        failure, shared_rows = pickle.loads(await self.stdout.readexactly(head_size))
        rows = await self.stdout.readexactly(bulk_size)
        if shared_rows is not None and self.shared is not None:
            rows = self.shared.map[:shared_rows]  # a copy: the memory serves the next piece
        return failure, rows

    async def stop(self, timeout: float = 5.0) -> None:
        """Close its stdin (it exits), then kill it by PID if it has not within ``timeout``."""
        with contextlib.suppress(Exception):
            self.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()
        finally:
            if self.shared is not None:
                self.shared.close()


class BatchPool:
    """Worker processes that turn big batches into rows, each serving one batch at a time."""

    def __init__(
        self,
        workers: int,
        *,
        secret: bytes,
        verdict_now: bool,
        identity: str,
        call_timeout: float = CALL_TIMEOUT,
    ) -> None:
        self.workers = workers
        self.call_timeout = call_timeout
        self.secret = secret
        self.identity = identity
        self.verdict_now = verdict_now
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        self._all: set[_Worker] = set()
        #: lines of the batches in the workers' hands or waiting for one (counted against
        #: ``--max-pending`` before a batch joins them)
        self.lines = 0

    async def _spawn(self) -> _Worker:
        shared = Shared() if hasattr(os, "memfd_create") else None  # Linux (and FreeBSD 13+)
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "reachwatch.collector.batch",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                limit=1 << 20,
                pass_fds=(shared.fd,) if shared is not None else (),
            )
        except BaseException:
            if shared is not None:
                shared.close()
            raise
        worker = _Worker(process, shared)
        self._all.add(worker)
        await worker.send(
            (self.secret, self.identity, self.verdict_now, shared.fd if shared is not None else None)
        )
        return worker

    async def start(self) -> None:
        """Start the workers (they import for ~0.3 s each, in the background)."""
        for _ in range(self.workers):
            self._idle.put_nowait(await self._spawn())

    @property
    def idle(self) -> int:
        """Workers free for a call now."""
        return self._idle.qsize()

    @property
    def pids(self) -> list[int]:
        return [w.process.pid for w in self._all]

    async def rows(
        self, body: bytes, *, newlines: int, submitter: str, network: Network, vantage: str | None = None
    ) -> RowColumns:
        """The batch's rows in line order; :class:`ApiError` listing the bad lines, if any. A batch
        of many lines (``newlines``: as the caller counted them) is cut into pieces staged side by
        side, one per idle worker: when none is idle (other batches have them), it goes whole to the
        next, since each piece costs a call (~0.8 ms of a worker's CPU, ~0.3 of the event loop's)
        and busy workers would not stage the pieces side by side anyway."""
        count = min(max(1, self.idle), self.workers, max(1, newlines // POOLED_LINES))
        self.lines += newlines
        try:
            answers = await asyncio.gather(
                *(
                    self._piece(piece, first, submitter, vantage, network)
                    for first, piece in pieces(body, count)
                )
            )
        finally:
            self.lines -= newlines
        done = [answer for answer in answers if answer is not None]
        if len(done) < len(answers):
            raise Overloaded(1)
        failed = [failure for failure, _ in done if isinstance(failure, str)]
        if failed:
            raise RuntimeError(f"a batch worker failed: {failed[0]}")  # answered 500, type logged
        errors = [e for failure, _ in done if failure for e in failure]
        if errors:
            raise rejected(errors)
        batch = RowColumns.concat([RowColumns.from_ipc(rows) for _, rows in done])
        if not len(batch):
            raise ApiError(400, EMPTY_BATCH)
        return batch

    async def _piece(
        self, body: memoryview, first: int, submitter: str, vantage: str | None, network: Network
    ) -> tuple[Any, bytes] | None:
        """The worker's answer for one piece: (None, Arrow IPC rows), (errors, b"") or (the type of
        a bug, b""); None if the worker died."""
        return await self._on_worker((first, submitter, vantage, *_network(network)), body)

    async def posts(self, body: bytes, items: list[Item]) -> tuple[Any, bytes] | None:
        """The worker's answer for a group of single posts (:mod:`~reachwatch.collector.post_rows`),
        their bodies one after the other in ``body``: (refused posts, Arrow IPC rows of the others),
        (the type of a bug, b""); None if the worker died."""
        self.lines += len(items)
        try:
            return await self._on_worker((POSTS, items), memoryview(body))
        finally:
            self.lines -= len(items)

    async def _on_worker(self, header: tuple[Any, ...], body: memoryview) -> tuple[Any, bytes] | None:
        worker = await self._idle.get()
        if worker.dead:  # died while idle: this batch is not its batch, so it gets another
            log.error("a batch worker process died while idle; starting another")
            worker = await self._replace(worker)
        # shielded: a request cancelled mid-call must not leave its answer unread in the pipe
        return await asyncio.shield(self._call(worker, header, body))

    async def _call(
        self, worker: _Worker, header: tuple[Any, ...], body: memoryview
    ) -> tuple[Any, bytes] | None:
        answer: tuple[Any, bytes] | None = None
        try:
            answer = await asyncio.wait_for(worker.call(header, body), self.call_timeout)
        except (
            asyncio.IncompleteReadError,
            ConnectionError,
            OSError,
            pickle.UnpicklingError,
            TimeoutError,
        ) as exc:
            what = "did not answer in time" if isinstance(exc, TimeoutError) else "died"
            log.error("a batch worker process %s; starting another", what)
            worker = await self._replace(worker)
        finally:
            self._idle.put_nowait(worker)
        return answer

    async def _replace(self, worker: _Worker) -> _Worker:
        """A new worker in place of ``worker`` (stopped); ``worker`` itself if none can be started
        (its next call fails and tries again)."""
        self._all.discard(worker)
        await worker.stop(timeout=0)
        try:
            return await self._spawn()
        except OSError as exc:
            log.error("could not start a batch worker: %s", type(exc).__name__)
            return worker

    async def close(self) -> None:
        workers, self._all = list(self._all), set()
        await asyncio.gather(*(w.stop() for w in workers))


def _network(network: Network) -> tuple[str | None, str | None, str | None]:
    return network.asn, network.name, network.cc


if __name__ == "__main__":
    worker_main()
