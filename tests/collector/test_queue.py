"""The client-side outbox: only acknowledged measurements leave the disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson

from collector.conftest import collector
from collector.test_app import web
from reachwatch.collector.config import Settings
from reachwatch.collector.queue import Outbox


async def test_put_is_idempotent_and_flush_sends(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    ms = web(real_measurements)[:6]
    box = Outbox(tmp_path / "box")
    for m in ms:
        box.put(m)
    box.put(ms[0])
    assert len(box.pending()) == len(ms)
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (_, http):
        result = await box.flush("http://collector", batch=4, client=http)
        assert (result.sent, result.rejected, result.remaining) == (len(ms), 0, 0)
        assert (await http.get("/api/v1/measurements")).json()["metadata"]["count"] == len(ms)
    assert box.pending() == []


async def test_unreachable_then_busy_then_back(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    ms = web(real_measurements)[:3]
    box = Outbox(tmp_path / "box")
    for m in ms:
        box.put(m)
    down = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda r: (_ for _ in ()).throw(httpx.ConnectError("down")))
    )
    result = await box.flush("http://collector", client=down)
    assert result.sent == 0 and result.remaining == 3 and len(box.pending()) == 3

    calls = []
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (app, _):
        inner = httpx.ASGITransport(app=app, client=("192.0.2.1", 1))

        class Flaky(httpx.AsyncBaseTransport):
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                calls.append(request.url.path)
                if len(calls) == 1:
                    raise httpx.ConnectError("refused")
                if len(calls) == 2:
                    return httpx.Response(503, headers={"retry-after": "0.1"}, json={"error": "busy"})
                if len(calls) == 3:
                    return httpx.Response(429, headers={"retry-after": "0.1"}, json={"error": "slow down"})
                return await inner.handle_async_request(request)

        async with httpx.AsyncClient(transport=Flaky()) as http:
            result = await box.flush("http://collector", client=http, retry_for=5)
    assert result.sent == 3 and result.remaining == 0 and len(calls) == 4


async def test_rejected_lines_are_set_aside(tmp_path: Path, real_measurements: list[dict[str, Any]]) -> None:
    good = web(real_measurements)[0]
    box = Outbox(tmp_path / "box")
    box.put(good)
    bad = box.put({"input": "http://x.example/", "test_keys": {}})
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (_, http):
        result = await box.flush("http://collector", client=http)
    assert (result.sent, result.rejected, result.remaining) == (1, 1, 0)
    assert (box.rejected_dir / bad.name).exists()
    assert "measurement_start_time" in (box.rejected_dir / bad.name).with_suffix(".error").read_text()
    assert orjson.loads((box.rejected_dir / bad.name).read_bytes())["input"] == "http://x.example/"
