"""The probe's path to a collector: outbox first, background sends, Retry-After, bounded final send."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import orjson

from reachwatch.probe.submit import Submitter
from reachwatch.store.compression import decompress

LINES = [orjson.dumps({"input": f"http://site{i}.example/", "n": i}) for i in range(5)]


def test_written_to_disk_before_sent_and_retry_after_honoured(tmp_path: Path) -> None:
    seen: list[tuple[int, float]] = []  # (lines in the request, time)
    answers = [
        httpx.Response(503, headers={"retry-after": "0.2"}),
        httpx.Response(429, headers={"retry-after": "0.2"}),
    ]
    box = tmp_path / "box"

    def handler(request: httpx.Request) -> httpx.Response:
        body = request.content
        if request.headers.get("content-encoding") == "zstd":  # as the outbox sends its batches
            body = decompress(body)
        lines = body.splitlines()
        pending = {p.read_bytes() for p in (box / "pending").glob("*.json")}
        assert set(lines) <= pending, "a measurement was sent before it was on disk"
        seen.append((len(lines), asyncio.get_running_loop().time()))
        if answers:
            return answers.pop(0)
        return httpx.Response(200, json={"measurement_uids": [f"u{i}" for i in range(len(lines))]})

    async def scenario() -> Submitter:
        submitter = Submitter("http://collector.invalid", box, interval=0.05)
        submitter.start(httpx.AsyncClient(transport=httpx.MockTransport(handler)))
        for line in LINES:
            await submitter.put(line)
        await submitter.finish(timeout=10)
        return submitter

    submitter = asyncio.run(scenario())
    assert submitter.result.sent == len(LINES)
    assert submitter.result.queued == 0 and not submitter.result.timed_out
    assert len(seen) >= 3
    assert seen[2][1] - seen[0][1] >= 0.35, "Retry-After was not waited for"
    assert not list((box / "pending").glob("*.json"))
    assert "sent 5" in submitter.summary()


def test_unreachable_collector_keeps_everything_queued(tmp_path: Path) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.ConnectError("refused", request=request)

    async def scenario() -> Submitter:
        submitter = Submitter("http://collector.invalid", tmp_path / "box", interval=0.05)
        submitter.start(httpx.AsyncClient(transport=httpx.MockTransport(handler)))
        for line in LINES:
            await submitter.put(line)
        await asyncio.sleep(0.2)
        await submitter.finish(timeout=0.5)
        return submitter

    submitter = asyncio.run(scenario())
    assert calls >= 2  # tried in the background and at the end
    assert submitter.result.sent == 0 and submitter.result.queued == len(LINES)
    assert submitter.result.timed_out
    assert "5 still queued" in submitter.summary()
    assert {p.read_bytes() for p in (tmp_path / "box" / "pending").glob("*.json")} == set(LINES)


def test_rejected_lines_are_set_aside(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = request.content
        if request.headers.get("content-encoding") == "zstd":  # as the outbox sends its batches
            body = decompress(body)
        lines = body.splitlines()
        if len(lines) > 1:
            return httpx.Response(422, json={"errors": [{"line": 1, "error": "bad"}]})
        return httpx.Response(200, json={"measurement_uids": ["u"]})

    async def scenario() -> Submitter:
        submitter = Submitter("http://collector.invalid", tmp_path / "box", interval=10)
        submitter.start(httpx.AsyncClient(transport=httpx.MockTransport(handler)))
        for line in LINES[:2]:
            await submitter.put(line)
        await submitter.finish(timeout=5)
        return submitter

    submitter = asyncio.run(scenario())
    assert submitter.result.rejected == 1 and submitter.result.sent == 1 and submitter.result.queued == 0
    assert len(list((tmp_path / "box" / "rejected").glob("*.error"))) == 1
    assert "rejected 1 (see " in submitter.summary()
    assert submitter.summary().endswith("; the first: 422: bad (line 1 of 2 sent together))")
