"""Administrative routes behind a bearer token: delete a measurement, re-run the verdict.

A re-analysis reads every stored row: minutes on a big store (~2 min at 180,000 rows, an outside
soak), past any proxy's timeout, so it runs in the background: ``POST`` starts it (202) and
``GET`` tells how far it is; ``?wait=true`` answers when it is done, as before session 18."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import hmac
import logging
from typing import Any, Literal

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from reachwatch.collector.analyser import AnalysisUnavailable, analyse_raw
from reachwatch.collector.config import Settings
from reachwatch.collector.http import STORE_FAILING, ApiError, json_response, store_errors
from reachwatch.collector.ingest import Ingestor
from reachwatch.store import Store
from reachwatch.store.schema import Analysis

log = logging.getLogger(__name__)

AUTH: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or wrong bearer token"},
    403: {"description": "admin disabled"},
    **STORE_FAILING,
}


def check_token(request: Request, settings: Settings) -> None:
    if not settings.admin_token:
        raise ApiError(403, "administration is disabled: start the collector with --admin-token-file")
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), settings.admin_token.encode()):
        raise ApiError(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})


def add_routes(app: FastAPI, settings: Settings) -> None:
    @app.delete("/api/v1/measurement/{measurement_uid}", responses={**AUTH, 404: {"description": "no such"}})
    async def delete_measurement(request: Request, measurement_uid: str) -> Response:
        check_token(request, settings)
        store: Store = request.app.state.store
        with store_errors("delete from"):
            found = len(measurement_uid) <= 128 and await store.delete(measurement_uid)
        if not found:
            raise ApiError(404, "no such measurement")
        return json_response({"deleted": measurement_uid})

    job = app.state.reanalysis = Reanalysis()

    @app.post(
        "/api/v1/admin/reanalyse",
        status_code=202,
        responses={
            **AUTH,
            200: {"description": "with wait=true: done, {reanalysed}"},
            409: {"description": "a re-analysis is running already: its progress"},
        },
    )
    async def reanalyse(request: Request, wait: bool = False) -> Response:
        """Recompute the verdict columns of every stored measurement with the current rules, in the
        background: 202 and its progress (``GET`` this route follows it); ``wait=true``: answered
        when done, ``{"reanalysed": N}``. Fingerprint findings (``confirmed``, a verdict a
        fingerprint decided) are cleared with them and ``reachwatch analyze``'s record is dropped,
        so that its next run makes them again: left as they were, a row could be confirmed and a
        failure, and analyze would skip it."""
        check_token(request, settings)
        if job.running:
            return json_response(job.view(), 409)
        await job.start(request.app.state.store, request.app.state.ingestor)
        if not wait:
            return json_response(job.view(), 202)
        assert job.task is not None
        await asyncio.shield(job.task)  # a client that leaves does not stop it
        if job.status != "done":
            raise ApiError(
                503,
                f"the collector could not re-analyse its store ({job.error}); retry later",
                headers={"Retry-After": "5"},
            )
        return json_response({"reanalysed": job.reanalysed})

    @app.get("/api/v1/admin/reanalyse", responses=AUTH)
    async def reanalysis(request: Request) -> Response:
        """The last re-analysis: ``status`` (idle: none since the collector started; running,
        done, failed, or interrupted by a stop), rows ``reanalysed`` so far, when it started and
        finished (UTC)."""
        check_token(request, settings)
        return json_response(job.view())


Status = Literal["idle", "running", "done", "failed", "interrupted"]


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass
class Reanalysis:
    """The collector's one re-analysis: where it is, and its task."""

    status: Status = "idle"
    reanalysed: int = 0
    started: str | None = None
    finished: str | None = None
    error: str | None = None
    task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self.status == "running"

    def view(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "task"}

    async def start(self, store: Store, ingestor: Ingestor) -> None:
        """Begin: analyze's record is dropped in the request (a store that is down is its 503),
        the rows' verdicts follow in the background. The record goes first so that a re-analysis
        stopped half-way leaves rows cleared of their findings for analyze's next run to make."""
        with store_errors("re-analyse"):
            await store.forget_findings()
        self.status, self.reanalysed, self.error = "running", 0, None
        self.started, self.finished = _now(), None
        self.task = asyncio.get_running_loop().create_task(self._run(store, ingestor))

    async def _run(self, store: Store, ingestor: Ingestor) -> None:
        """Batch by batch, three at once: the next batch is read and the last verdicts written
        while this one's are made (off the event loop: ingest goes on meanwhile). The verdicts
        are written as many at once as the store takes best (:attr:`Store.update_rows`)."""
        batches = store.raw_batches(BATCH)
        reading: asyncio.Future[list[tuple[str, bytes]] | None] | None = None
        writing: asyncio.Task[int] | None = None
        judged: list[Analysis] = []
        try:
            reading = asyncio.ensure_future(anext(batches, None))
            while (batch := await reading) is not None:
                reading = asyncio.ensure_future(anext(batches, None))
                judged += await _verdicts(ingestor, batch)
                if len(judged) + BATCH > store.update_rows:  # the next batch would not fit
                    if writing is not None:
                        self.reanalysed += await writing
                    writing, judged = asyncio.create_task(_write(store, judged)), []
            if writing is not None:
                self.reanalysed += await writing
                writing = None
            if judged:
                writing, judged = asyncio.create_task(_write(store, judged)), []
                self.reanalysed += await writing
                writing = None
            await store.forget_findings()
            self.status = "done"
        except asyncio.CancelledError:
            self.status = "interrupted"
            raise
        except Exception as exc:  # a store that failed: said in the status, logged for the operator
            log.error("re-analysis failed: %s: %.300s", type(exc).__name__, exc)
            self.status, self.error = "failed", "storage error"
        finally:
            if reading is not None:  # cancelled if still reading; its failure, if any, retrieved
                reading.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await reading
            if writing is not None:  # the verdicts in hand are written: they are right
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    self.reanalysed += await asyncio.shield(writing)
            close = getattr(batches, "aclose", None)  # an async generator's, in every store
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()
            self.finished = _now()

    async def stop(self) -> None:
        """Cancel it if it runs (the collector stops): the rows done so far keep their new verdicts."""
        task = self.task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


#: Rows a re-analysis reads, judges and writes at a time
BATCH = 500


async def _write(store: Store, updates: list[Analysis]) -> int:
    await store.update_analysis(updates)
    return len(updates)


async def _verdicts(ingestor: Ingestor, batch: list[tuple[str, bytes]]) -> list[Analysis]:
    """The batch's verdicts off the event loop: in the analysis child, or a thread if there is
    none or none can be kept alive."""
    if ingestor.analyser is not None:
        try:
            return await ingestor.analyser.analyse(batch)
        except AnalysisUnavailable:
            pass
    return await asyncio.to_thread(analyse_raw, batch)
