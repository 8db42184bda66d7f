"""From a submitted measurement to a stored row: validate, hash, attribute, scrub, commit.

:class:`Ingestor` turns one measurement into a :class:`~reachwatch.store.schema.Row` (CPU work, in
the request) and hands rows to one writer task that group-commits whatever is waiting: every
request's answer waits for the commit that holds its rows. The queue is bounded: past
``max_pending`` measurements a request gets :class:`Overloaded` (503 + Retry-After).

The verdict is not on that path when the store can hold rows unanalysed (DuckDB): rows are stored
with ``analysed`` false and :class:`~reachwatch.collector.analyser.Analyser` fills the verdict in
after the commit. Other stores (ClickHouse) get it at ingest, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
from collections.abc import Sequence
from typing import Any

import orjson
from pydantic import ValidationError

from reachwatch.collector import analysis
from reachwatch.collector.analyser import Analyser, Backlog
from reachwatch.collector.attribution import Attributor, Network
from reachwatch.collector.http import ApiError
from reachwatch.collector.ooni_protocol import BASE_KEYS, MeasurementIn, measurement_uid
from reachwatch.collector.privacy import LOCAL, Scrubber
from reachwatch.store import Store
from reachwatch.store.schema import PENDING_ANALYSIS, Row, compress

log = logging.getLogger(__name__)


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
        background_analysis: bool | None = None,
    ) -> None:
        """``background_analysis``: verdicts after the commit (default: when the store can)."""
        if background_analysis is None:
            background_analysis = isinstance(store, Backlog)
        self.analyser = Analyser(store) if background_analysis and isinstance(store, Backlog) else None
        self.store = store
        self.attributor = attributor
        self.secret = secret
        self.max_pending = max_pending
        self.max_batch = max_batch
        self._queue: asyncio.Queue[tuple[list[Row], asyncio.Future[list[str]]]] = asyncio.Queue()
        self._pending = 0
        self._task: asyncio.Task[None] | None = None

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
        if not isinstance(m, dict):
            raise ApiError(422, f"{where}: a measurement must be a JSON object")
        try:
            base = MeasurementIn.model_validate({k: m[k] for k in BASE_KEYS if k in m})
        except ValidationError as exc:
            raise ApiError(422, f"{where}: {validation_message(exc)}") from None
        try:
            start = dt.datetime.fromisoformat(base.measurement_start_time)
        except ValueError:
            raise ApiError(422, f"{where}: measurement_start_time is not a valid date") from None
        # identity: the content as sent (key order kept, whitespace normalised), without the report id
        ident = {k: v for k, v in m.items() if k != "report_id"} if "report_id" in m else m
        try:
            canonical = orjson.dumps(ident)
        except TypeError as exc:
            raise ApiError(422, f"{where}: {exc}") from None
        if report_id is not None:
            m["report_id"] = report_id
        content_hash = hashlib.blake2b(canonical, digest_size=16, key=self.secret[:32]).hexdigest()
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
        stored = scrubber.json(data)
        url = base.input if isinstance(base.input, str) else (base.input[0] if base.input else None)
        url = scrubber.text(url)
        rid = scrubber.text(str(m.get("report_id") or "")) or ""
        if self.analyser is None:
            v = analysis.verdict(m if stored is data else orjson.loads(stored))
            verdict: dict[str, Any] = {f: getattr(v, f) for f in PENDING_ANALYSIS}
        else:
            verdict = PENDING_ANALYSIS
        now = dt.datetime.now(dt.UTC)
        return Row(
            measurement_uid=measurement_uid(now, cc, base.test_name, content_hash),
            content_hash=content_hash,
            report_id=rid,
            input=url,
            domain=analysis.domain(url),
            probe_cc=cc,
            probe_asn=asn,
            probe_network_name=scrubber.text(net_name),
            attributed=network.attributed,
            x_probe_cc_claimed=claimed_cc if claimed_cc != cc else None,
            x_probe_asn_claimed=claimed_asn if claimed_asn != asn else None,
            measurement_start_time=start,
            measurement_start_day=start.date(),
            test_name=base.test_name,
            confirmed=False,
            category_code=scrubber.text(analysis.category(m)),
            probe_id_hash=hashlib.blake2b(rid.encode(), digest_size=8, key=self.secret[:32]).hexdigest(),
            raw=compress(stored),
            analysed=self.analyser is None,
            **verdict,
        )

    # -- group commit --------------------------------------------------------------------------
    async def submit(self, rows: Sequence[Row]) -> list[str]:
        """Store ``rows`` (all or nothing); their uids in order, an earlier uid for a duplicate."""
        if self._task is None:
            raise RuntimeError("ingestor not started")
        if self._pending + len(rows) > self.max_pending:
            raise Overloaded()
        fut: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
        self._pending += len(rows)
        self._queue.put_nowait((list(rows), fut))
        # no shield needed: a cancelled request cancels only its future; the writer still commits
        # its rows (they are queued) and skips answering a future that is done
        return await fut

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ingest-writer")
        if self.analyser is not None:
            self.analyser.start()

    async def stop(self) -> None:
        if self._task is not None:
            while self._pending:
                await asyncio.sleep(0.01)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.analyser is not None:
            await self.analyser.stop()

    async def settled(self) -> None:
        """Wait until every measurement acknowledged so far has its verdict (tests, admin)."""
        if self.analyser is not None:
            await self.analyser.settled()

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            size = len(batch[0][0])
            while size < self.max_batch and not self._queue.empty():
                item = self._queue.get_nowait()
                batch.append(item)
                size += len(item[0])
            try:
                await self._commit(batch)
            except Exception as exc:
                log.error("store write failed: %s", type(exc).__name__)
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(Overloaded(2))
            finally:
                self._pending -= size

    async def _commit(self, batch: list[tuple[list[Row], asyncio.Future[list[str]]]]) -> None:
        hashes = [r.content_hash for rows, _ in batch for r in rows]
        known = await self.store.existing(list(dict.fromkeys(hashes)))
        new: list[Row] = []
        for rows, _ in batch:
            for r in rows:
                if r.content_hash not in known:
                    known[r.content_hash] = r.measurement_uid
                    new.append(r)
        await self.store.insert(new)
        if new and self.analyser is not None:
            self.analyser.poke()
        for rows, fut in batch:
            if not fut.done():
                fut.set_result([known[r.content_hash] for r in rows])
