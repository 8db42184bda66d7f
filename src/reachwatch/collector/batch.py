"""A batch of JSON lines to rows: in the request's process, or in worker processes for big batches.

Parsing, validating, attributing, scrubbing, hashing and compressing a batch line is ~80 µs of
CPU, most of it holding the GIL: one collector process tops out near 10,000 lines/s whatever the
cores. Batches of at least :data:`POOLED_LINES` lines are therefore staged and finished in a pool
of worker processes (``--ingest-workers``, default one per core), which send back each row's
column values; the collector's own process keeps only HTTP, the rate limit, the duplicate check,
the insert and the acknowledgement, so a measurement is still acknowledged only once committed.
The submitter's address reaches a worker in memory, for scrubbing, and is never written anywhere.
The workers are child processes (``python -m reachwatch.collector.batch``) that read requests on
their stdin and answer on their stdout, one at a time, as length-prefixed pickles (between this
collector's own processes only); the collector's secret comes first, on stdin, never on the command
line. A worker exits when its stdin closes, so none outlives the collector, even after ``kill -9``.
A worker that dies fails only the batch it held, with a 503 and ``Retry-After`` (nothing of it was
stored), and is replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import pickle
import struct
import sys
from typing import Any, BinaryIO

import orjson

from reachwatch.collector.attribution import Network
from reachwatch.collector.http import ApiError, bad_json
from reachwatch.collector.ingest import Overloaded
from reachwatch.collector.prepare import Staged, finish_rows, stage
from reachwatch.store.schema import RowColumns

log = logging.getLogger(__name__)

#: Smaller batches are staged in the request's process: a round trip to a worker costs ~0.3 ms.
POOLED_LINES = 32
EMPTY_BATCH = "empty batch: send one measurement per line"
#: How many errors a rejected batch lists.
LISTED_ERRORS = 100


_BLANK = frozenset(b" \t\r\x0b\x0c")


def lines_of(body: bytes, first: int = 1) -> list[tuple[int, memoryview]]:
    """The non-blank lines with their numbers, the first being ``first``: views into ``body``, not
    copies (splitting copied every line: ~3 us of a median one, against ~0.4)."""
    view = memoryview(body)
    out: list[tuple[int, memoryview]] = []
    start, n = 0, first
    while True:
        end = body.find(b"\n", start)
        stop = len(body) if end < 0 else end
        if stop > start and not (body[start] in _BLANK and body[start:stop].isspace()):
            out.append((n, view[start:stop]))
        if end < 0:
            return out
        start, n = end + 1, n + 1


def pieces(body: bytes, count: int) -> list[tuple[int, bytes]]:
    """``body`` cut at newlines into at most ``count`` pieces of similar size, each with the number
    of its first line."""
    out: list[tuple[int, bytes]] = []
    start, line = 0, 1
    for k in range(1, count):
        cut = body.find(b"\n", max(start, k * len(body) // count))
        if cut < 0:
            break
        out.append((line, body[start : cut + 1]))
        line += body.count(b"\n", start, cut + 1)
        start = cut + 1
    out.append((line, body[start:]))
    return out


def rejected(errors: list[dict[str, Any]]) -> ApiError:
    status = 400 if any(e["status"] == 400 for e in errors) else 422
    return ApiError(status, f"{len(errors)} bad line(s); nothing stored", errors=errors[:LISTED_ERRORS])


def stage_lines(
    lines: list[tuple[int, memoryview]], *, secret: bytes, verdict_now: bool, submitter: str, network: Network
) -> tuple[list[Staged], list[dict[str, Any]]]:
    """Each line staged (:func:`~reachwatch.collector.prepare.stage`), or its error."""
    staged: list[Staged] = []
    errors: list[dict[str, Any]] = []
    for n, line in lines:
        try:
            m = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            errors.append({"line": n, "status": 400, "error": bad_json(f"line {n}", exc)})
            continue
        try:
            staged.append(
                stage(
                    m,
                    secret=secret,
                    verdict_now=verdict_now,
                    submitter=submitter,
                    network=network,
                    where=f"line {n}",
                )
            )
        except ApiError as exc:
            errors.append({"line": n, "status": exc.status, "error": exc.message})
    return staged, errors


# -- in a worker process ---------------------------------------------------------------------------
_HEADER = struct.Struct("!Q")


def _read_frame(stream: BinaryIO) -> Any:
    head = stream.read(_HEADER.size)
    if len(head) < _HEADER.size:
        raise EOFError
    (size,) = _HEADER.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


def _write_frame(stream: BinaryIO, value: Any) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)))
    stream.write(data)
    stream.flush()


def rows_of(
    body: bytes, *, first: int, secret: bytes, verdict_now: bool, submitter: str, network: Network
) -> tuple[bool, Any]:
    """(True, rows) or (False, errors) for the lines of ``body`` (numbered from ``first``): the
    finished rows as Arrow IPC bytes (:class:`~reachwatch.store.schema.RowColumns`)."""
    lines = lines_of(body, first)
    staged, errors = stage_lines(
        lines, secret=secret, verdict_now=verdict_now, submitter=submitter, network=network
    )
    if errors:
        return False, errors
    return True, finish_rows(staged).to_ipc()


def worker_main() -> None:
    """The worker's loop: (secret, verdict_now) first, then (body, first line number, submitter, asn,
    name, cc) requests."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but frames on the real stdout
    # every line parses into hundreds of short-lived containers (see collector/server.py)
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    try:
        secret, verdict_now = _read_frame(stdin)
        while True:
            body, first, submitter, asn, name, cc = _read_frame(stdin)
            network = Network(asn=asn, name=name, cc=cc)
            try:
                answer = rows_of(
                    body,
                    first=first,
                    secret=secret,
                    verdict_now=verdict_now,
                    submitter=submitter,
                    network=network,
                )
            except Exception as exc:  # a bug: say which, never what (the batch holds addresses)
                answer = (False, type(exc).__name__)
            _write_frame(stdout, answer)
            del body
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        return


# -- in the collector ------------------------------------------------------------------------------
def default_workers() -> int:
    """One per core, at most 4; none on a single core (the pool would only add round trips)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return 0 if cores < 2 else min(cores, 4)


class _Worker:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        assert process.stdin is not None and process.stdout is not None
        self.stdin, self.stdout = process.stdin, process.stdout

    async def send(self, value: Any) -> None:
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        self.stdin.write(_HEADER.pack(len(data)))
        self.stdin.write(data)
        await self.stdin.drain()

    async def call(self, value: Any) -> Any:
        await self.send(value)
        (size,) = _HEADER.unpack(await self.stdout.readexactly(_HEADER.size))
        return pickle.loads(await self.stdout.readexactly(size))

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


class BatchPool:
    """Worker processes that turn big batches into rows, each serving one batch at a time."""

    def __init__(self, workers: int, *, secret: bytes, verdict_now: bool) -> None:
        self.workers = workers
        self.secret = secret
        self.verdict_now = verdict_now
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        self._all: set[_Worker] = set()

    async def _spawn(self) -> _Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "reachwatch.collector.batch",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=1 << 20,
        )
        worker = _Worker(process)
        self._all.add(worker)
        await worker.send((self.secret, self.verdict_now))
        return worker

    async def start(self) -> None:
        """Start the workers (they import for ~0.3 s each, in the background)."""
        for _ in range(self.workers):
            self._idle.put_nowait(await self._spawn())

    @property
    def pids(self) -> list[int]:
        return [w.process.pid for w in self._all]

    async def rows(self, body: bytes, *, newlines: int, submitter: str, network: Network) -> RowColumns:
        """The batch's rows in line order; :class:`ApiError` listing the bad lines, if any. A batch
        of many lines (``newlines``: as the caller counted them) is cut into pieces staged side by
        side, one per worker."""
        count = min(self.workers, max(1, newlines // POOLED_LINES))
        answers = await asyncio.gather(
            *(self._piece(piece, first, submitter, network) for first, piece in pieces(body, count))
        )
        if any(result is None for _, result in answers):
            raise Overloaded(1)
        failed = [result for ok, result in answers if not ok and isinstance(result, str)]
        if failed:
            raise RuntimeError(f"a batch worker failed: {failed[0]}")  # answered 500, type logged
        errors = [e for ok, result in answers if not ok for e in result]
        if errors:
            raise rejected(errors)
        batch = RowColumns.concat([RowColumns.from_ipc(result) for _, result in answers])
        if not len(batch):
            raise ApiError(400, EMPTY_BATCH)
        return batch

    async def _piece(self, body: bytes, first: int, submitter: str, network: Network) -> tuple[bool, Any]:
        worker = await self._idle.get()
        # shielded: a request cancelled mid-call must not leave its answer unread in the pipe
        request = (body, first, submitter, *_network(network))
        return await asyncio.shield(self._call(worker, request))

    async def _call(self, worker: _Worker, request: tuple[Any, ...]) -> tuple[bool, Any]:
        try:
            answer: tuple[bool, Any] = await worker.call(request)
        except (asyncio.IncompleteReadError, ConnectionError, OSError, pickle.UnpicklingError):
            log.error("a batch worker process died; starting another")
            self._all.discard(worker)
            await worker.stop(timeout=0)
            try:
                worker = await self._spawn()
            except OSError as exc:
                log.error("could not start a batch worker: %s", type(exc).__name__)
                return False, None
            answer = (False, None)
        finally:
            self._idle.put_nowait(worker)
        return answer

    async def close(self) -> None:
        workers, self._all = list(self._all), set()
        await asyncio.gather(*(w.stop() for w in workers))


def _network(network: Network) -> tuple[str | None, str | None, str | None]:
    return network.asn, network.name, network.cc


if __name__ == "__main__":
    worker_main()
