"""From a submitted measurement to a stored row: validate, hash, attribute, scrub, commit.

:meth:`Ingestor.stage` validates, attributes and scrubs one measurement in the request (every 4xx
is decided there) and queues it for the group commit, in two stages: a group's hashing and zstd
compression (:func:`finish`) run on a thread of their own, off the event loop, while the previous
groups are inserted (all finished groups waiting go in one statement). Every request's answer waits
for the commit that holds its rows. The queue is bounded: past ``max_pending`` measurements a
request gets :class:`Overloaded` (503 + Retry-After).

The verdict is not on that path when the store can hold rows unanalysed (DuckDB, ClickHouse): rows
are stored with ``analysed`` false and :class:`~reachwatch.collector.analyser.Analyser` fills the
verdict in after the commit. A store without that backlog gets it at ingest.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import hashlib
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
from pydantic import ValidationError

from reachwatch.collector import analysis
from reachwatch.collector.analyser import Analyser, Backlog
from reachwatch.collector.attribution import Attributor, Network
from reachwatch.collector.http import ApiError
from reachwatch.collector.ooni_protocol import (
    BASE_KEYS,
    MeasurementIn,
    base_fields,
    measurement_uid,
    model_fields,
)
from reachwatch.collector.privacy import LOCAL, Scrubber
from reachwatch.store import Store
from reachwatch.store.schema import COLUMN_NAMES, PENDING_ANALYSIS, Row, RowColumns, compress, compress_many

log = logging.getLogger(__name__)


@dataclasses.dataclass(slots=True)
class Staged:
    """A validated, attributed, scrubbed measurement: the row but for its hashes, uid and ``raw``."""

    key: bytes
    canonical: bytes  #: the identity form (content as sent, without the report id)
    stored: bytes  #: the scrubbed JSON to store
    received: dt.datetime
    columns: dict[str, Any]


def finish(staged: Staged, raw: bytes | None = None) -> Row:
    """The row: keyed BLAKE2b of the identity, uid, probe id hash, zstd of the stored JSON (unless
    given as ``raw``). Meant for a worker thread: hashing (past 2 KB) and compression release the GIL."""
    return Row(*finish_values(staged, raw))


def finish_values(staged: Staged, raw: bytes | None = None) -> tuple[Any, ...]:
    """:func:`finish` as a tuple in :data:`~reachwatch.store.schema.COLUMN_NAMES` order."""
    c = staged.columns
    content_hash = _keyed_hash(staged.canonical, staged.key)
    c["measurement_uid"] = measurement_uid(staged.received, c["probe_cc"], c["test_name"], content_hash)
    c["content_hash"] = content_hash
    c["probe_id_hash"] = hashlib.blake2b(c["report_id"].encode(), digest_size=8, key=staged.key).hexdigest()
    c["raw"] = compress(staged.stored) if raw is None else raw
    return tuple(c[name] for name in COLUMN_NAMES)


#: hashlib releases the GIL for an update from 2,048 bytes: re-taking it while the event loop runs
#: Python waits up to a switch interval, so the finisher hashes in smaller pieces and keeps the GIL
_PIECE = 2047


def _keyed_hash(data: bytes, key: bytes) -> str:
    h = hashlib.blake2b(digest_size=16, key=key)
    if len(data) < _PIECE:
        h.update(data)
    else:
        view = memoryview(data)
        for i in range(0, len(view), _PIECE):
            h.update(view[i : i + _PIECE])
    return h.hexdigest()


def _finish_all(batch: list[tuple[list[Staged], Any]]) -> list[RowColumns]:
    """:func:`finish` for a group commit, compressing all of it in one call; each request's rows as
    columns."""
    raws = iter(compress_many([s.stored for items, _ in batch for s in items]))
    return [RowColumns.of_values([finish_values(s, next(raws)) for s in items]) for items, _ in batch]


#: A finished group on its way to the insert: the requests, their rows, how many rows.
Finished = tuple[list[tuple[list[Staged], "asyncio.Future[list[str]]"]], list[RowColumns], int]


def stage(
    m: Any,
    *,
    secret: bytes,
    verdict_now: bool,
    submitter: str,
    network: Network,
    report_id: str | None = None,
    where: str = "measurement",
) -> Staged:
    """Validate, attribute and scrub ``m`` (every 4xx is raised here); the hashing and compression
    left for :func:`finish`, run off the event loop (both release the GIL). ``verdict_now``: the
    verdict columns are computed here (for a store without an analysis backlog)."""
    if not isinstance(m, dict):
        raise ApiError(422, f"{where}: a measurement must be a JSON object")
    base = base_fields(m)
    if base is None:
        try:
            base = model_fields(MeasurementIn.model_validate({k: m[k] for k in BASE_KEYS if k in m}))
        except ValidationError as exc:
            raise ApiError(422, f"{where}: {validation_message(exc)}") from None
    try:
        start = dt.datetime.fromisoformat(base.measurement_start_time)
    except ValueError:
        raise ApiError(422, f"{where}: measurement_start_time is not a valid date") from None
    # test_keys (nearly all of the bytes) is serialised once and spliced into both the identity
    # and the stored form as an orjson Fragment; serialised at the same depth as inside the
    # measurement, so orjson's nesting limit applies exactly as to the whole
    test_keys = m["test_keys"]
    try:
        m["test_keys"] = orjson.Fragment(orjson.dumps({"test_keys": test_keys})[13:-1])
        # identity: the content as sent (key order kept, whitespace normalised), without the report id
        ident = {k: v for k, v in m.items() if k != "report_id"} if "report_id" in m else m
        canonical = orjson.dumps(ident)
    except TypeError as exc:
        m["test_keys"] = test_keys
        raise ApiError(422, f"{where}: {exc}") from None
    if report_id is not None:
        m["report_id"] = report_id
    claimed_asn, claimed_cc = base.probe_asn, base.probe_cc
    asn = network.asn or claimed_asn
    cc = network.cc or claimed_cc
    net_name = network.name if network.asn else base.probe_network_name
    m["probe_ip"] = LOCAL
    if network.attributed:
        m["probe_asn"], m["probe_cc"], m["probe_network_name"] = asn, cc, net_name
        if claimed_asn != asn:
            m["x_probe_asn_claimed"] = claimed_asn
        if claimed_cc != cc:
            m["x_probe_cc_claimed"] = claimed_cc
    else:
        m["x_unattributed"] = True
    # the stored JSON and every column taken from the measurement are scrubbed the same way
    scrubber = Scrubber((submitter, base.probe_ip or ""))
    data = orjson.dumps(m)
    m["test_keys"] = test_keys
    stored = scrubber.json(data)
    url = base.input if isinstance(base.input, str) else (base.input[0] if base.input else None)
    url = scrubber.text(url)
    rid = scrubber.text(str(m.get("report_id") or "")) or ""
    if verdict_now:
        v = analysis.verdict(m if stored is data else orjson.loads(stored))
        verdict: dict[str, Any] = {f: getattr(v, f) for f in PENDING_ANALYSIS}
    else:
        verdict = PENDING_ANALYSIS
    return Staged(
        secret[:32],
        canonical,
        stored,
        dt.datetime.now(dt.UTC),
        {
            "report_id": rid,
            "input": url,
            "domain": analysis.domain(url),
            "probe_cc": cc,
            "probe_asn": asn,
            "probe_network_name": scrubber.text(net_name),
            "attributed": network.attributed,
            "x_probe_cc_claimed": claimed_cc if claimed_cc != cc else None,
            "x_probe_asn_claimed": claimed_asn if claimed_asn != asn else None,
            "measurement_start_time": start,
            "measurement_start_day": start.date(),
            "test_name": base.test_name,
            "confirmed": False,
            "category_code": scrubber.text(analysis.category(m)),
            "analysed": verdict_now,
            **verdict,
        },
    )


class Overloaded(ApiError):
    def __init__(self, retry_after: int = 1) -> None:
        super().__init__(503, "collector busy, retry later", headers={"Retry-After": str(retry_after)})


def validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False)[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


class Ingestor:
    def __init__(
        self,
        store: Store,
        attributor: Attributor,
        secret: bytes,
        *,
        max_pending: int = 20_000,
        max_batch: int = 2_000,
        commit_delay: float = 0.002,
        small_group: int = 100,
        background_analysis: bool | None = None,
    ) -> None:
        """``background_analysis``: verdicts after the commit (default: when the store can).
        ``commit_delay``: how long a group commit that starts with fewer than ``small_group``
        measurements waits for more (single posts) before it is written."""
        if background_analysis is None:
            background_analysis = isinstance(store, Backlog)
        self.analyser = (
            Analyser(store, idle_for=self.idle_for)
            if background_analysis and isinstance(store, Backlog)
            else None
        )
        self.store = store
        self.attributor = attributor
        self.secret = secret
        self.max_pending = max_pending
        self.max_batch = max_batch
        self.commit_delay = commit_delay
        self.small_group = small_group
        self._queue: asyncio.Queue[tuple[list[Staged], asyncio.Future[list[str]]]] = asyncio.Queue()
        self._finished: asyncio.Queue[Finished] = asyncio.Queue()
        self._finisher: ThreadPoolExecutor | None = None
        self._pending = 0
        self._last_active = time.monotonic()
        self._tasks: tuple[asyncio.Task[None], asyncio.Task[None]] | None = None

    # -- per measurement -----------------------------------------------------------------------
    def network(self, submitter: str) -> Network:
        return self.attributor.lookup(submitter) if self.attributor.enabled else Network()

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
        """:func:`stage` with this collector's secret and analysis mode."""
        return stage(
            m,
            secret=self.secret,
            verdict_now=self.analyser is None,
            submitter=submitter,
            network=network,
            report_id=report_id,
            where=where,
        )

    # -- group commit --------------------------------------------------------------------------
    async def submit(self, rows: Sequence[Staged]) -> list[str]:
        """Store ``rows`` (all or nothing); their uids in order, an earlier uid for a duplicate."""
        if self._tasks is None:
            raise RuntimeError("ingestor not started")
        if self._pending + len(rows) > self.max_pending:
            raise Overloaded()
        fut: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
        self._pending += len(rows)
        self._queue.put_nowait((list(rows), fut))
        # no shield needed: a cancelled request cancels only its future; the writer still commits
        # its rows (they are queued) and skips answering a future that is done
        return await fut

    async def submit_rows(self, rows: RowColumns) -> list[str]:
        """:meth:`submit` for rows already finished (by a batch worker process): straight to the
        insert stage, acknowledged with its commit."""
        if self._tasks is None:
            raise RuntimeError("ingestor not started")
        if self._pending + len(rows) > self.max_pending:
            raise Overloaded()
        fut: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
        self._pending += len(rows)
        self._finished.put_nowait(([([], fut)], [rows], len(rows)))
        return await fut

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
                # single posts: let the posts in flight join this one (docs/collector.md, "Performance")
                await asyncio.sleep(self.commit_delay)
            while size < self.max_batch and not self._queue.empty():
                item = self._queue.get_nowait()
                batch.append(item)
                size += len(item[0])
            try:
                finished = await loop.run_in_executor(self._finisher, _finish_all, batch)
            except Exception as exc:
                log.error("finishing rows failed: %s", type(exc).__name__)
                self._fail(batch, size)
                continue
            self._finished.put_nowait((batch, finished, size))

    async def _write_groups(self) -> None:
        while True:
            groups = [await self._finished.get()]
            size = groups[0][2]
            while size < self.max_batch and not self._finished.empty():
                groups.append(self._finished.get_nowait())
                size += groups[-1][2]
            batch = [item for b, _, _ in groups for item in b]
            finished = [rows for _, f, _ in groups for rows in f]
            try:
                await self._commit(batch, finished)
            except Exception as exc:
                log.error("store write failed: %s", type(exc).__name__)
                self._fail(batch, 0)
            finally:
                self._done(size)

    def _fail(self, batch: list[tuple[list[Staged], asyncio.Future[list[str]]]], size: int) -> None:
        for _, fut in batch:
            if not fut.done():
                fut.set_exception(Overloaded(2))
        if size:
            self._done(size)

    def _done(self, size: int) -> None:
        self._pending -= size
        self._last_active = time.monotonic()

    async def _commit(
        self,
        batch: list[tuple[list[Staged], asyncio.Future[list[str]]]],
        finished: list[RowColumns],
    ) -> None:
        group = RowColumns.concat(finished)
        hashes, uids = group.content_hashes, group.uids
        known = await self.store.existing(list(dict.fromkeys(hashes)))
        keep: list[int] = []
        for i, h in enumerate(hashes):
            if h not in known:
                known[h] = uids[i]
                keep.append(i)
        new = group if len(keep) == len(hashes) else group.take(keep)
        await self.store.insert(new)
        if keep and self.analyser is not None:
            self.analyser.poke()
        start = 0
        for part, (_, fut) in zip(finished, batch, strict=True):
            end = start + len(part)
            if not fut.done():
                fut.set_result([known[h] for h in hashes[start:end]])
            start = end
