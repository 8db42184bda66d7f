"""Administrative routes behind a bearer token: delete a measurement, re-run the verdict."""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from reachwatch.collector.analyser import AnalysisUnavailable, analyse_raw
from reachwatch.collector.config import Settings
from reachwatch.collector.http import STORE_FAILING, ApiError, json_response, store_errors
from reachwatch.collector.ingest import Ingestor
from reachwatch.store import Store
from reachwatch.store.schema import Analysis

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

    @app.post("/api/v1/admin/reanalyse", responses=AUTH)
    async def reanalyse(request: Request) -> Response:
        """Recompute the verdict columns of every stored measurement with the current rules.
        Fingerprint findings (``confirmed``, a verdict a fingerprint decided) are cleared with
        them and ``reachwatch analyze``'s record is dropped, so that its next run makes them again:
        left as they were, a row could be confirmed and a failure, and analyze would skip it."""
        check_token(request, settings)
        store: Store = request.app.state.store
        ingestor: Ingestor = request.app.state.ingestor
        done = 0
        with store_errors("re-analyse"):
            async for batch in store.raw_batches(500):
                # off the event loop (~0.5 s of verdicts a batch): ingest goes on meanwhile
                updates = await _verdicts(ingestor, batch)
                await store.update_analysis(updates)
                done += len(updates)
            await store.forget_findings()
        return json_response({"reanalysed": done})


async def _verdicts(ingestor: Ingestor, batch: list[tuple[str, bytes]]) -> list[Analysis]:
    """The batch's verdicts off the event loop: in the analysis child, or a thread if there is
    none or none can be kept alive."""
    if ingestor.analyser is not None:
        try:
            return await ingestor.analyser.analyse(batch)
        except AnalysisUnavailable:
            pass
    return await asyncio.to_thread(analyse_raw, batch)
