"""Measurements to a collector: on disk first, then sent in the background while the run goes on.

Each measurement is put in the on-disk :class:`~reachwatch.collector.queue.Outbox` (fsynced, off
the event loop) before anything is sent, so none is lost if the collector is down or the probe
dies. A background task sends what is pending (the collector's batch endpoint) about once a
second, backing off while the collector is unreachable; a file is deleted only once its batch was
acknowledged, 429/503 wait for ``Retry-After``. :meth:`Submitter.finish` sends the rest within a
bounded wait; what is still queued then goes with the next run (or ``reachwatch submit``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from pathlib import Path

import httpx

from reachwatch.collector.queue import BATCH, FlushResult, Outbox

INTERVAL = 1.0  # seconds between background sends while measuring
MAX_BACKOFF = 8.0  # longest pause while the collector is unreachable
HTTP_TIMEOUT = 30.0


@dataclasses.dataclass
class SubmitResult:
    sent: int = 0
    rejected: int = 0
    queued: int = 0  # still in the outbox: sent next time
    timed_out: bool = False
    error: str | None = None  # why the last send kept measurements queued
    first_refusal: str | None = None  # the collector's reason for the first measurement it refused


class Submitter:
    """Queue on disk, send in the background; one flush at a time."""

    def __init__(
        self, url: str, outbox: Path | str, *, interval: float = INTERVAL, batch: int = BATCH
    ) -> None:
        self.url = url
        self.outbox = Outbox(outbox)
        self.interval = interval
        self.batch = batch
        self.result = SubmitResult()
        self._stop = asyncio.Event()
        self._new = 0  # measurements put since the last send attempt
        self._task: asyncio.Task[None] | None = None
        self._http: httpx.AsyncClient | None = None

    def start(self, client: httpx.AsyncClient | None = None) -> None:
        """Start the background sender (on the running loop); ``client`` is closed by :meth:`close`."""
        self._http = client or httpx.AsyncClient(timeout=HTTP_TIMEOUT)
        self._task = asyncio.get_running_loop().create_task(self._background())

    async def put(self, line: bytes) -> None:
        """Write one measurement to the outbox (durable when this returns)."""
        await asyncio.get_running_loop().run_in_executor(None, self.outbox.put, line)
        self._new += 1

    async def _flush(self) -> FlushResult:
        self._new = 0
        result = await self.outbox.flush(self.url, batch=self.batch, retry_for=0.0, client=self._http)
        self.result.sent += result.sent
        self.result.rejected += result.rejected
        if result.rejections and self.result.first_refusal is None:
            self.result.first_refusal = result.rejections[0].reason
        self.result.error = result.error if result.remaining else None
        return result

    async def _background(self) -> None:
        delay = self.interval
        pending = bool(self.outbox.pending())  # left over from an earlier run: send them too
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
            if self._stop.is_set():
                return
            if not (pending or self._new):
                continue
            result = await self._flush()
            pending = result.remaining > 0
            stuck = pending and not result.sent and not result.rejected
            delay = min(delay * 2, MAX_BACKOFF) if stuck else self.interval
            delay = max(delay, result.retry_after)  # a busy collector's Retry-After

    async def finish(self, timeout: float) -> SubmitResult:
        """Stop the background sender, send the rest within ``timeout`` seconds, count what is left."""
        self._stop.set()
        try:
            async with asyncio.timeout(timeout):
                if self._task is not None:
                    await self._task
                while self.outbox.pending():
                    result = await self._flush()
                    if not result.sent and not result.rejected:  # unreachable or busy: wait, retry
                        await asyncio.sleep(max(min(0.5, self.interval), result.retry_after))
        except TimeoutError:
            self.result.timed_out = True
        finally:
            await self.close()
        self.result.queued = len(self.outbox.pending())
        return self.result

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def summary(self) -> str:
        r = self.result
        text = f"collector {self.url}: sent {r.sent}"
        if r.rejected:
            text += f", rejected {r.rejected} (see {self.outbox.rejected_dir}; the first: {r.first_refusal})"
        if r.queued:
            text += f", {r.queued} still queued in {self.outbox.path} (sent next time)"
            if r.error:
                text += f": {r.error}"
        return text
