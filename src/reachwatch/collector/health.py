"""``GET /api/v1/health`` (and ``HEAD``): whether the collector takes measurements now, for
operators and load balancers. Answered from memory (nothing read from the store), so it stays
cheap under load."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from reachwatch.collector.http import json_response
from reachwatch.collector.ingest import Ingestor

HEALTH: dict[int | str, dict[str, Any]] = {
    503: {"description": "not taking measurements now (busy, or the store is failing): retry later"}
}


def add_routes(app: FastAPI) -> None:
    # load balancers probe with HEAD: the GET's status and headers, no body (Starlette sends none);
    # a route of its own, out of OpenAPI (one route of both methods would be two operations of one id)
    @app.head("/api/v1/health", include_in_schema=False)
    @app.get("/api/v1/health", responses=HEALTH)
    async def health(request: Request) -> Response:
        """``status`` ok, busy (``--max-pending`` reached) or store failing (the last write to the
        store or its journal failed: a full disk, say); measurements waiting for the store
        (``pending``) and held by the journal (``journal``, null without one)."""
        ingestor: Ingestor = request.app.state.ingestor
        state = ingestor.health()
        if state["status"] == "ok":
            return json_response(state)
        return json_response(state, 503, headers={"Retry-After": "1" if state["status"] == "busy" else "5"})
