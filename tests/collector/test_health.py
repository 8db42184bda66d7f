"""``GET /api/v1/health``: ok while the collector takes measurements; 503 when it is full."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from collector.conftest import collector
from collector.test_app import web
from reachwatch.collector import http
from reachwatch.collector.config import Settings


async def test_health_says_ok_then_busy(tmp_path: Path, real_measurements: list[dict[str, Any]]) -> None:
    ms = web(real_measurements)
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0, max_pending=2)) as (app, http):
        r = await http.get("/api/v1/health")
        assert r.status_code == 200
        assert r.json() == {"status": "ok", "pending": 0, "journal": 0, "max_pending": 2}
        store = app.state.store
        release = asyncio.Event()
        original = store.insert

        async def held_up(rows: Any) -> None:
            await release.wait()
            await original(rows)

        store.insert = held_up
        post = asyncio.create_task(
            http.post("/api/v1/measurements", content=b"\n".join(orjson.dumps(m) for m in ms[:2]))
        )
        for _ in range(200):
            r = await http.get("/api/v1/health")
            if r.status_code != 200:
                break
            await asyncio.sleep(0.01)
        assert r.status_code == 503 and r.headers["Retry-After"] == "1"
        assert r.json()["status"] == "busy" and r.json()["pending"] == 2
        release.set()
        assert (await post).status_code == 200


async def test_health_without_a_journal(tmp_path: Path) -> None:
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0, journal=False)) as (_, http):
        assert (await http.get("/api/v1/health")).json()["journal"] is None


async def test_health_answers_head(tmp_path: Path) -> None:
    """Load balancers probe with HEAD: it was a 405. The status and headers of a GET, no body;
    OpenAPI documents the GET only."""
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (app, http):
        r = await http.head("/api/v1/health")
        assert r.status_code == 200 and r.content == b""
        assert r.headers["content-type"] == "application/json"
        assert list(app.openapi()["paths"]["/api/v1/health"]) == ["get"]
        # a method it lacks names both in its Allow
        assert (await http.post("/api/v1/health")).headers["allow"] == "GET, HEAD"


async def test_health_says_busy_while_bodies_on_their_way_fill_their_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Uploads holding the body budget answered every other request 503 while health said ok (an
    outside check, session 17)."""
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (_, http_client):
        assert (await http_client.get("/api/v1/health")).status_code == 200
        monkeypatch.setattr(http, "_held_bytes", http.BODY_BUDGET)
        r = await http_client.get("/api/v1/health")
        assert r.status_code == 503 and r.json()["status"] == "busy" and r.headers["retry-after"] == "1"
