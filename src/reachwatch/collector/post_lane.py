"""Single posts staged and finished in the batch workers, in groups.

A single post staged in the request's process (its parse, validation, attribution, scrubbing,
hashing and compression: ~100 us of a median measurement, ~190 us with the verdict at ingest) holds
the GIL that the event loop, the journal and DuckDB's writer share: at 64 clients the collector was
bound by it with a third of 2 cores idle. Here each post waits in the lane, and the posts waiting
go to a batch worker process together (:func:`~reachwatch.collector.post_rows.post_rows`), at most
a group a worker at a time: the posts that come meanwhile form the next. A group starts once as
many posts wait as the last group had, or after ``delay`` (as the group commit gathers:
:meth:`~reachwatch.collector.ingest.Ingestor._gather`). The rows go straight to the insert stage
(:meth:`~reachwatch.collector.ingest.Ingestor.submit_posts`). When no worker is free (batches have
them, or one hangs until its call times out), a group of small posts is staged here, as without
workers, rather than wait behind them: single posts waited ~0.25 s behind 3,000-line batches, and
every post ~30 s behind a stopped worker (an outside check).

Posts waiting in the lane count against ``--max-pending`` as a batch's lines in the workers do:
past it a post is answered 503 before it is read, a bad one too.

Each post keeps its own answer: its 4xx for its own content (the message the request's process
would give), its uid once committed; a worker that dies answers its group 503 (nothing of it was
stored). A request cancelled meanwhile leaves its post to be stored, as one queued for the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging

from reachwatch.collector.attribution import Network
from reachwatch.collector.batch import CALL_TIMEOUT, POOLED_BYTES, BatchPool
from reachwatch.collector.finish import Staged
from reachwatch.collector.http import ApiError
from reachwatch.collector.ingest import Ingestor, Overloaded, answer
from reachwatch.collector.post_rows import Item, answer_of
from reachwatch.collector.submissions import Kind, unwrap
from reachwatch.store.schema import RowColumns

log = logging.getLogger(__name__)

#: Most posts in a group, and most bytes of their bodies (one post past it goes alone)
MOST_POSTS = 256
MOST_BYTES = 8 << 20
#: Longest a group that has fewer posts than the last one waits for more (seconds)
DELAY = 0.002


@dataclasses.dataclass(slots=True)
class _Post:
    body: bytes
    kind: Kind
    submitter: str
    network: Network
    vantage: str | None
    #: its commit's future (:meth:`Ingestor.submit_posts`) once staged; its 4xx if refused
    staged: asyncio.Future[asyncio.Future[list[str]]]


class PostLane:
    """The posts waiting for a batch worker, and the task that sends them."""

    def __init__(self, pool: BatchPool, ingestor: Ingestor, *, delay: float = DELAY) -> None:
        self.pool = pool
        self.ingestor = ingestor
        self.delay = delay
        self._waiting: list[_Post] = []
        #: set when a post comes to an empty lane, or once as many wait as ``_want``
        self._arrived: asyncio.Future[None] | None = None
        self._want = 0
        self._last = 1
        self._task: asyncio.Task[None] | None = None
        #: groups in the workers at once: one a worker
        self._free = asyncio.Semaphore(pool.workers)
        self._in_flight: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="post-lane")

    async def stop(self) -> None:
        """Stop sending (the server's shutdown, once its requests are answered): a post still
        waiting is answered 503, nothing of it stored."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._in_flight:  # groups in the workers: answered within their call's timeout
            await asyncio.wait(set(self._in_flight), timeout=CALL_TIMEOUT)
        waiting, self._waiting = self._waiting, []
        for post in waiting:
            _refuse(post, Overloaded(1))

    async def submit(
        self, body: bytes, kind: Kind, *, submitter: str, network: Network, vantage: str | None
    ) -> str:
        """The post's uid once its row is committed; its 4xx if refused; 503 when the collector is
        full (the posts in the lane and in the workers counted)."""
        if self._task is None:
            raise RuntimeError("post lane not started")
        self.ingestor.check_room(1, coming=self.pool.lines + len(self._waiting))
        post = _Post(body, kind, submitter, network, vantage, asyncio.get_running_loop().create_future())
        self._waiting.append(post)
        arrived = self._arrived
        if arrived is not None and not arrived.done() and len(self._waiting) >= self._want:
            arrived.set_result(None)
        del body
        (uid,) = await answer(await post.staged)
        return uid

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._waiting:
                await self._wait(loop, 1, None)
            want = min(self._last, MOST_POSTS)
            if len(self._waiting) < want and self.delay > 0:
                await self._wait(loop, want, self.delay)
            await self._free.acquire()  # the posts meanwhile gather for the next group
            group = self._take()
            self._last = len(group)
            if not self.pool.idle and all(len(post.body) < POOLED_BYTES for post in group):
                self._free.release()
                self._stage_here(group)
                await asyncio.sleep(0)  # the requests' I/O between such groups
                continue
            task = asyncio.create_task(self._staged(group))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _staged(self, group: list[_Post]) -> None:
        try:
            await self._stage(group)
        except Exception as exc:  # a bug here must not stop the lane: its group gets a 500
            log.error("staging posts failed: %s", type(exc).__name__)
            for post in group:
                _refuse(post, RuntimeError("staging posts failed"))
        finally:
            self._free.release()

    def _stage_here(self, group: list[_Post]) -> None:
        """Each post staged on the event loop and queued for the group commit, as without workers."""
        ingestor = self.ingestor
        for post in group:
            try:
                staged = stage_post(ingestor, post.kind, post.body, post.submitter, post.network)
                committed = ingestor.enqueue([staged])
            except ApiError as exc:
                _refuse(post, exc)
                continue
            except Exception as exc:  # a bug: this post's 500 (its type logged), not the lane's end
                log.error("staging a post failed: %s", type(exc).__name__)
                _refuse(post, RuntimeError("staging a post failed"))
                continue
            post.body = b""
            if not post.staged.done():
                post.staged.set_result(committed)

    async def _wait(self, loop: asyncio.AbstractEventLoop, want: int, longest: float | None) -> None:
        """Until ``want`` posts wait, or ``longest`` seconds."""
        arrived = self._arrived = loop.create_future()
        self._want = want
        timer = None if longest is None else loop.call_later(longest, _resolve, arrived)
        try:
            await arrived
        finally:
            if timer is not None:
                timer.cancel()
            self._arrived = None

    def _take(self) -> list[_Post]:
        """The next group: the posts waiting, up to :data:`MOST_POSTS` and :data:`MOST_BYTES`."""
        size, n = 0, 0
        for post in self._waiting[:MOST_POSTS]:
            if n and size + len(post.body) > MOST_BYTES:
                break
            size += len(post.body)
            n += 1
        group = self._waiting[:n]
        del self._waiting[:n]
        return group

    async def _stage(self, group: list[_Post]) -> None:
        items: list[Item] = []
        start = 0
        for post in group:
            end = start + len(post.body)
            net = post.network
            items.append((post.kind, start, end, post.submitter, post.vantage, net.asn, net.name, net.cc))
            start = end
        body = b"".join(post.body for post in group)
        for post in group:
            post.body = b""  # held once, in the group's body
        answered = await self.pool.posts(body, items)
        del body
        if answered is None:  # the worker died: nothing of the group was stored
            for post in group:
                _refuse(post, Overloaded(1))
            return
        failure, rows = answered
        if isinstance(failure, str):  # a bug in the worker (answered 500, its type logged)
            for post in group:
                _refuse(post, RuntimeError(f"a batch worker failed: {failure}"))
            return
        refused = {r[0]: answer_of(r) for r in failure}
        commits = iter(self.ingestor.submit_posts(RowColumns.from_ipc(rows)) if rows else [])
        for index, post in enumerate(group):
            outcome = refused.get(index)
            if outcome is not None:
                _refuse(post, outcome)
            elif not post.staged.done():  # its request may have been cancelled meanwhile
                post.staged.set_result(next(commits))
            else:
                next(commits)  # stored all the same, answered to no one


def stage_post(ingestor: Ingestor, kind: Kind, raw: bytes, submitter: str, network: Network) -> Staged:
    """A single post staged in this process (every 4xx raised here): its measurement and report id
    taken out of ``raw`` as ``kind`` says, then :meth:`Ingestor.stage` (the worker's side:
    :func:`~reachwatch.collector.post_rows.post_rows`)."""
    content, report_id = unwrap(kind, raw, ingestor.identity, ingestor.secret)
    return ingestor.stage(content, submitter=submitter, network=network, report_id=report_id, where="content")


def _refuse(post: _Post, exc: BaseException) -> None:
    if not post.staged.done():
        post.staged.set_exception(exc)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
