"""The client-side outbox: only acknowledged measurements leave the disk."""

from __future__ import annotations

import asyncio
import io
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from collector.conftest import collector, live_server
from collector.test_app import web
from reachwatch.collector import outbox_files, queue
from reachwatch.collector.config import Settings
from reachwatch.collector.queue import Outbox
from reachwatch.errors import UserError
from reachwatch.store.compression import decompress


def sent(request: httpx.Request) -> bytes:
    """The batch a request carries, as the outbox compressed it (zstd) or not."""
    body = request.read()
    return decompress(body) if request.headers.get("content-encoding") == "zstd" else body


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
    reason = (box.rejected_dir / bad.name).with_suffix(".error").read_text()
    assert "measurement_start_time" in reason
    # the collector's "line N: ..." meant the batch's line N, not a line of any file of the user's:
    # said apart as the batch's
    assert re.fullmatch(
        r"422: measurement_start_time: Field required;.* \(line [12] of 2 sent together\)\n", reason
    )
    assert [(r.origins, r.path) for r in result.rejections] == [((), box.rejected_dir / bad.name)]
    assert orjson.loads((box.rejected_dir / bad.name).read_bytes())["input"] == "http://x.example/"


async def test_batches_too_big_for_the_collector_get_through_in_halves(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    """Over real sockets a collector may answer 413 while the body is still being sent, which the
    client sees as a reset: the outbox halves the batch then too, and everything gets through."""
    sample = web(real_measurements)[0]
    box = Outbox(tmp_path / "box")
    for i in range(40):  # 40 x 400 KB: far more than the sockets buffer, so the 413 comes mid-send
        test_keys = {**sample["test_keys"], "x_pad": "x" * 400_000}
        box.put({**sample, "input": f"https://site{i}.example/", "test_keys": test_keys})
    one = len(box.pending()[0].read_bytes())
    settings = Settings(store=str(tmp_path / "m.duckdb"), rate=0, max_body=3 * one, ingest_workers=0)
    with live_server(settings) as url:
        result = await box.flush(url, retry_for=10)
    assert (result.sent, result.rejected, result.remaining) == (40, 0, 0)


def test_a_batch_stops_at_the_byte_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    box = Outbox(tmp_path / "box")
    for i in range(10):
        box.put({"n": i, "pad": "x" * 1000})
    monkeypatch.setattr(outbox_files, "MAX_BATCH_BYTES", 3500)
    chunk = outbox_files.next_batch(box.pending(), 500)
    assert len(chunk) == 3
    monkeypatch.setattr(outbox_files, "MAX_BATCH_BYTES", 10)
    assert len(outbox_files.next_batch(box.pending(), 500)) == 1  # never empty


async def test_a_reset_while_sending_halves_the_batch(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    """A collector that cuts the connection while a big batch is being sent (its early 413, seen
    as a reset): the batch is halved until it passes; a refused connection is not a reason to."""
    ms = web(real_measurements)[:8]
    box = Outbox(tmp_path / "box")
    for i, m in enumerate(ms):
        box.put({**m, "input": f"https://site{i}.example/"})
    limit = 2 * max(p.stat().st_size for p in box.pending()) + 2
    sizes: list[int] = []
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (app, _):
        inner = httpx.ASGITransport(app=app, client=("192.0.2.1", 1))

        class Cutting(httpx.AsyncBaseTransport):
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                body = sent(request)
                sizes.append(body.count(b"\n") + 1)
                if len(body) > limit:
                    raise httpx.WriteError("connection reset by peer")
                return await inner.handle_async_request(request)

        async with httpx.AsyncClient(transport=Cutting()) as http:
            result = await box.flush("http://collector", client=http)
    assert (result.sent, result.remaining) == (8, 0)
    assert sizes == [8, 4, 4]  # halved until it passes, then as big as what is left


async def test_a_batch_size_cut_twice_is_not_tried_again(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    """A collector that cuts every batch past a size (its early 413 to a body too big): a size cut
    twice is too big for good, so the flush does not go back and forth."""
    box = _queued(tmp_path, real_measurements, 12)
    cut = httpx.WriteError("connection reset by peer")
    script = Scripted(cut, cut, None, cut)  # 8 cut, 4 cut, 2 pass, 4 cut again: 2 from then on
    async with httpx.AsyncClient(transport=script) as http:
        result = await box.flush("http://collector", batch=8, client=http)
    assert result.sent == 12
    assert script.sizes == [8, 4, 2, 4, 2, 2, 2, 2, 2]


async def test_a_refusal_that_is_not_about_the_measurements_keeps_them_queued(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    """A collector URL with a wrong path (404 from a real collector) or a proxy's 403 moved every
    measurement to ``rejected/``, never to be resent; they stay queued now, and the reason is said."""
    ms = web(real_measurements)[:3]
    box = Outbox(tmp_path / "box")
    for m in ms:
        box.put(m)
    settings = Settings(store=str(tmp_path / "m.duckdb"), rate=0, ingest_workers=0)
    with live_server(settings) as url:
        result = await box.flush(url + "/collector/")
        assert (result.sent, result.rejected, result.remaining) == (0, 0, 3)
        assert result.error is not None and "answered 404" in result.error
        forbidden = httpx.AsyncClient(
            transport=httpx.MockTransport(lambda r: httpx.Response(403, text="<h1>Forbidden</h1>"))
        )
        async with forbidden:
            result = await box.flush(url, client=forbidden)
        assert (result.sent, result.rejected, result.remaining) == (0, 0, 3)
        assert result.error is not None and "403: <h1>Forbidden</h1>" in result.error
        assert list(box.rejected_dir.iterdir()) == []
        # a web server's HTML error page is named by its reason, not quoted line by line
        page = "<!DOCTYPE HTML>\n<html><head><title>Error</title></head>\n<body>501</body></html>"
        html = httpx.AsyncClient(
            transport=httpx.MockTransport(
                lambda r: httpx.Response(501, text=page, headers={"content-type": "text/html"})
            )
        )
        async with html:
            result = await box.flush(url, client=html)
        assert result.error is not None and "501: Not Implemented (not a reachwatch collector" in result.error
        assert "<" not in result.error and "\n" not in result.error
        result = await box.flush(url)
    assert (result.sent, result.rejected, result.remaining) == (3, 0, 0)


async def test_a_refusal_naming_no_line_is_narrowed_to_the_measurement(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    """A 422 for a whole batch without ``errors`` (another collector's) rejected every line of it:
    the batch is halved until the refused measurement is alone."""
    ms = web(real_measurements)[:4]
    box = Outbox(tmp_path / "box")
    for i, m in enumerate(ms):
        box.put({**m, "input": f"https://site{i}.example/"})
    bad = box.put({**ms[0], "input": "https://refused.example/"})
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (app, _):
        inner = httpx.ASGITransport(app=app, client=("192.0.2.1", 1))

        class Picky(httpx.AsyncBaseTransport):
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                if b"refused.example" in sent(request):
                    return httpx.Response(422, json={"error": "we do not take that site"})
                return await inner.handle_async_request(request)

        async with httpx.AsyncClient(transport=Picky()) as http:
            result = await box.flush("http://collector", client=http)
    assert (result.sent, result.rejected, result.remaining) == (4, 1, 0)
    assert [p.name for p in box.rejected_dir.glob("*.json")] == [bad.name]
    assert "we do not take that site" in (box.rejected_dir / bad.name).with_suffix(".error").read_text()


async def test_a_collector_that_stays_busy_ends_the_flush_after_retry_for(tmp_path: Path) -> None:
    """A 429/503 was waited for and resent with no look at ``retry_for``: ``reachwatch submit``
    against a collector that stays busy never returned."""
    box = Outbox(tmp_path / "box")
    box.put({"n": 1})
    calls: list[float] = []

    def busy(_request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(503, headers={"retry-after": "0.1"}, json={"error": "busy"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(busy)) as http:
        result = await asyncio.wait_for(box.flush("http://collector", client=http, retry_for=0.5), 10)
    assert result.remaining == 1 and result.error is not None and "503: busy" in result.error
    assert 2 <= len(calls) <= 10


async def test_a_collector_that_never_answers_ends_the_flush_after_retry_for(tmp_path: Path) -> None:
    """A collector that takes connections and never answers (stopped, hung) was read as one that
    cuts big batches off: each timeout halved the batch and tried again at once, with no look at
    ``retry_for``, so ``reachwatch submit --retry-for 10`` waited out one timeout per halving
    (9 minutes for a batch of 500). A timeout is now an unreachable collector's."""
    box = Outbox(tmp_path / "box")
    for n in range(8):
        box.put({"n": n})
    connections: list[asyncio.StreamWriter] = []

    async def mute(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)  # read nothing, answer nothing

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(timeout=0.5) as http:
            result = await asyncio.wait_for(box.flush(f"http://127.0.0.1:{port}", client=http), 30)
    finally:
        for writer in connections:
            writer.close()
        server.close()
        await server.wait_closed()
    assert result.remaining == 8 and result.error is not None and "ReadTimeout" in result.error
    assert len(connections) == 1


async def test_two_processes_flushing_one_outbox_take_turns(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    """``reachwatch measure --collector`` and ``reachwatch submit`` on one ``--outbox``: two Outbox
    objects (each flush holds its own open file, as a process would). Both used to list the same
    files and send them, and one then failed on a file the other had deleted (FileNotFoundError,
    a traceback from ``reachwatch submit``) or reported the other's new files as its own left."""
    sample = web(real_measurements)[0]
    ms = [{**sample, "input": f"https://site{i}.example/"} for i in range(60)]
    first, second = Outbox(tmp_path / "box"), Outbox(tmp_path / "box")
    for m in ms:
        first.put(m)
    with live_server(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as url:
        results = await asyncio.gather(first.flush(url, batch=10), second.flush(url, batch=10))
        async with httpx.AsyncClient() as http:
            stored = (await http.get(f"{url}/api/v1/measurements")).json()["metadata"]["count"]
    assert sum(r.sent for r in results) == len(ms), "a measurement was sent twice"
    assert [r.remaining for r in results] == [0, 0] and first.pending() == []
    assert stored == len(ms)


def test_put_lines_is_all_or_nothing(tmp_path: Path) -> None:
    """A file whose 5th line is bad left its first 4 queued (one of them a JSON array), sent by the
    next flush: every line is checked before the first is put, and a bad file queues nothing."""
    box = Outbox(tmp_path / "box")
    good = [orjson.dumps({"n": i}) for i in range(3)]
    for bad, why in (
        (b"[1, 2]", "(a JSON array)"),
        (b'"x"', "(a JSON string)"),
        (b'{"n": 4', "(unexpected end of data at column"),
        (b'{"n": "\xff"}', "(not valid UTF-8: byte 0xff at byte 8)"),
        (b"null", "(a JSON null)"),
    ):
        source = io.BytesIO(b"\n".join([*good, b"", bad, *good]) + b"\n")
        with pytest.raises(UserError) as caught:
            box.put_lines(source, "in.jsonl")
        assert caught.value.where == "in.jsonl:5" and caught.value.what.startswith("not a JSON object")
        assert why in caught.value.what and caught.value.fix and "line 5" in caught.value.fix
        assert "nothing from in.jsonl was queued" in caught.value.fix
        assert not any(box.pending_dir.iterdir()) and sorted(box.path.iterdir()) == [
            box.pending_dir,
            box.rejected_dir,
        ]
    # a good file: each line put as it was (stripped; a byte order mark first, CRLF, blank lines)
    source = io.BytesIO(b"\xef\xbb\xbf" + b"\r\n".join([good[0], b"  ", *good, good[0]]) + b"\r\n")
    assert box.put_lines(source, "in.jsonl") == 5
    assert sorted(p.read_bytes() for p in box.pending()) == sorted(good)


class _Seen(httpx.AsyncBaseTransport):
    """The collector's app, noting each request's coding and size; ``older``: a collector from
    before compressed uploads, which answered 415 to any."""

    def __init__(self, inner: httpx.AsyncBaseTransport, older: bool) -> None:
        self.inner, self.older = inner, older
        self.sent: list[tuple[str | None, int]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        coding = request.headers.get("content-encoding")
        self.sent.append((coding, len(request.content)))
        if self.older and coding:
            return httpx.Response(415, json={"error": f"Content-Encoding {coding!r} is not supported"})
        return await self.inner.handle_async_request(request)


@pytest.mark.parametrize("older", [False, True])
async def test_batches_go_compressed_and_uncompressed_to_an_older_collector(
    tmp_path: Path, real_measurements: list[dict[str, Any]], older: bool
) -> None:
    """The outbox sends zstd (a volunteer on metered data pays for every byte); a collector from
    before compressed uploads answers 415, and gets the same batch uncompressed."""
    box = Outbox(tmp_path / "box")
    for m in web(real_measurements)[:5]:
        box.put(m)
    plain = sum(len(p.read_bytes()) + 1 for p in box.pending()) - 1
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (app, http):
        seen = _Seen(httpx.ASGITransport(app=app, client=("192.0.2.1", 1)), older)
        async with httpx.AsyncClient(transport=seen) as client:
            result = await box.flush("http://collector", client=client)
        assert (result.sent, result.remaining, result.error) == (5, 0, None)
        assert (await http.get("/api/v1/measurements")).json()["metadata"]["count"] == 5
    zstd = seen.sent[0]
    assert zstd[0] == "zstd" and zstd[1] * 3 < plain, (seen.sent, plain)
    assert seen.sent == ([zstd, (None, plain)] if older else [zstd])


def test_files_a_killed_put_left_half_written_are_removed(tmp_path: Path) -> None:
    """``kill -9`` of ``reachwatch submit`` during a put left ``pending/.NAME.PID.tmp`` for ever
    (an outside check, session 16); a live process's is left to it."""
    box = Outbox(tmp_path / "box")
    ended = subprocess.Popen(["true"])  # a process that has ended and been reaped: its PID is free
    ended.wait()
    dead = box.pending_dir / f".{'a' * 32}.json.{ended.pid}.tmp"
    alive = box.pending_dir / f".{'b' * 32}.json.{os.getpid()}.tmp"
    for path in (dead, alive):
        path.write_bytes(b'{"half": ')
    Outbox(tmp_path / "box")
    assert not dead.exists() and alive.exists()


def test_origins_go_with_their_measurements(tmp_path: Path) -> None:
    """Each line that held a measurement is noted beside it; an origin whose measurement is gone
    (a kill between the two deletions after a send) is removed when the outbox is next opened."""
    box = Outbox(tmp_path / "box")
    source = io.BytesIO(b'{"n": 1}\n\n{"n": 2}\n{"n": 1}\n')
    assert box.put_lines(source, "in.jsonl") == 3
    one, two = sorted(box.pending(), key=lambda p: p.read_bytes())
    assert one.with_suffix(".from").read_text() == "in.jsonl:1\nin.jsonl:4\n"
    assert two.with_suffix(".from").read_text() == "in.jsonl:3\n"
    two.unlink()
    Outbox(tmp_path / "box")
    assert one.with_suffix(".from").exists() and not two.with_suffix(".from").exists()


async def test_a_wrong_path_to_a_collector_says_what_to_check(tmp_path: Path) -> None:
    """A reachwatch collector's own 404 for a --collector given with a path (``.../api/``) said only
    "Not Found": the hint about the base URL came only from other servers (an outside check)."""
    box = Outbox(tmp_path / "box")
    box.put({"n": 1})
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (_, http):
        result = await box.flush("http://collector/api/", client=http)
    assert result.remaining == 1 and result.error is not None
    assert "404" in result.error and "is http://collector/api/ the collector's base URL" in result.error


class Scripted(httpx.AsyncBaseTransport):
    """A collector's stand-in that answers each request by the next of ``script``: an exception
    to raise, (status, headers, body), or None for a collector's 200 with a uid a line, as every
    request past the script's end."""

    def __init__(self, *script: Any) -> None:
        self.script = list(script)
        self.sizes: list[int] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        lines = sent(request).count(b"\n") + 1
        self.sizes.append(lines)
        if not self.script:
            uids = [f"uid{len(self.sizes)}-{i}" for i in range(lines)]
            return httpx.Response(200, json={"measurement_uids": uids})
        step = self.script.pop(0)
        if step is None:  # a collector's answer, in the script's course
            return httpx.Response(
                200, json={"measurement_uids": [f"u{len(self.sizes)}-{i}" for i in range(lines)]}
            )
        if isinstance(step, Exception):
            raise step
        status, headers, body = step
        return httpx.Response(status, headers=headers, content=body)


def _queued(tmp_path: Path, real_measurements: list[dict[str, Any]], n: int) -> Outbox:
    box = Outbox(tmp_path / "box")
    for i, m in enumerate(web(real_measurements)[:1] * n):
        box.put({**m, "input": f"https://site{i}.example/"})
    return box


@pytest.mark.parametrize(
    "answer",
    [
        (200, {"content-type": "text/html"}, b"<html>Sign in to the hotel's wifi</html>"),
        (204, {}, b""),
        (200, {}, b"[]"),
        (200, {}, b'{"ok": true}'),
        (200, {}, b'{"measurement_uids": ["only-one"]}'),
        (200, {}, b'{"measurement_uids": [1, 2, 3]}'),
    ],
)
async def test_a_2xx_that_does_not_acknowledge_each_line_keeps_them_queued(
    tmp_path: Path, real_measurements: list[dict[str, Any]], answer: Any
) -> None:
    """A captive portal's page, a proxy's or another service's 2xx: not an acknowledgement. They
    were deleted (uids fewer than lines) or a traceback ended the flush (an outside check)."""
    box = _queued(tmp_path, real_measurements, 3)
    async with httpx.AsyncClient(transport=Scripted(answer)) as http:
        result = await box.flush("http://collector", client=http)
    assert (result.sent, result.remaining) == (0, 3) and len(box.pending()) == 3
    assert result.error is not None and "without a measurement uid for each of the 3" in result.error


async def test_a_cut_connection_does_not_keep_the_batches_small(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    """One cut (a collector restarting) halved every later batch for good: 2,007 one-line requests
    for 3,000 lines after a few (an outside check). They grow back once a batch passes."""
    box = _queued(tmp_path, real_measurements, 40)
    script = Scripted(httpx.ReadError(""))
    async with httpx.AsyncClient(transport=script) as http:
        result = await box.flush("http://collector", batch=16, client=http)
    assert result.sent == 40
    assert script.sizes == [16, 8, 16, 16]


async def test_retry_for_counts_from_the_failure_not_from_the_start(
    tmp_path: Path, real_measurements: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flush longer than ``retry_for`` gave up at the first failed connection after it."""
    box = _queued(tmp_path, real_measurements, 6)
    script = Scripted()
    clock = [1000.0]
    monkeypatch.setattr(queue, "_clock", lambda: clock[0])

    class Slow(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            clock[0] += 10.0  # each batch takes 10 s: past retry_for after the first
            if len(script.sizes) == 2 and len(script.script) == 0 and not hasattr(self, "failed"):
                self.failed = True
                raise httpx.ConnectError("All connection attempts failed")
            return await script.handle_async_request(request)

    async with httpx.AsyncClient(transport=Slow()) as http:
        result = await box.flush("http://collector", batch=2, retry_for=5.0, client=http)
    assert (result.sent, result.remaining) == (6, 0)


async def test_busy_past_retry_for_stops_without_a_last_wait(
    tmp_path: Path, real_measurements: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first ``Retry-After`` is waited; busy again, a wait that would end past ``retry_for``
    is not (with ``--retry-for 0`` two 429s of ``Retry-After: 60`` took two minutes, the second
    wait for nothing); ``Retry-After: nan`` is no reason not to wait."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(queue.asyncio, "sleep", sleep)
    box = _queued(tmp_path, real_measurements, 2)
    busy = (429, {"retry-after": "60"}, b'{"error": "slow down"}')
    async with httpx.AsyncClient(transport=Scripted(busy, busy)) as http:
        result = await box.flush("http://collector", retry_for=0.0, client=http)
    assert (result.sent, result.remaining, slept) == (0, 2, [60.0])
    slept.clear()
    nan = (503, {"retry-after": "nan"}, b'{"error": "busy"}')
    async with httpx.AsyncClient(transport=Scripted(nan)) as http:
        result = await box.flush("http://collector", retry_for=30.0, client=http)
    assert (result.sent, slept) == (2, [1.0])


async def test_a_line_named_twice_in_a_refusal_is_refused_once(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    box = _queued(tmp_path, real_measurements, 3)
    errors = [
        {"line": 1, "status": 422, "error": "line 1: a"},
        {"line": 1, "status": 422, "error": "line 1: b"},
    ]
    refusal = (422, {}, orjson.dumps({"error": "1 bad line(s)", "errors": errors}))
    async with httpx.AsyncClient(transport=Scripted(refusal)) as http:
        result = await box.flush("http://collector", client=http)
    assert (result.sent, result.rejected, result.remaining) == (2, 1, 0)
    assert "a (line 1 of 3" in result.rejections[0].reason


async def test_a_queued_file_of_several_lines_is_sent_as_one_or_refused_alone(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    """Each queued file is one line of the batch: one holding two measurements shifted the
    numbering, and the collector's refusal of one landed on others (an outside check)."""
    box = _queued(tmp_path, real_measurements, 2)
    (box.pending_dir / "0001.json").write_bytes(b'{"a": 1}\n{"b": 2}')
    (box.pending_dir / "0002.json").write_bytes(b'{\n  "pretty": true\n}\n')
    (box.pending_dir / "0003.json").mkdir()  # not a file: left alone
    script = Scripted()
    async with httpx.AsyncClient(transport=script) as http:
        result = await box.flush("http://collector", client=http)
    assert (result.sent, result.rejected, result.remaining) == (3, 1, 0)
    assert result.rejections[0].path.name == "0001.json"
    assert "not one measurement" in result.rejections[0].reason
    assert (box.pending_dir / "0003.json").is_dir()


def test_a_full_disk_while_queuing_is_said(small_disk: Path, real_measurements: list[dict[str, Any]]) -> None:
    box = Outbox(small_disk / "box")
    m = web(real_measurements)[0]
    big = b"\n".join(
        orjson.dumps({**m, "input": f"https://s{i}.example/", "pad": "x" * 60_000}) for i in range(100)
    )
    with pytest.raises(UserError, match="cannot queue in the outbox: No space left on device") as raised:
        box.put_lines(io.BytesIO(big), "many.jsonl")
    assert "measurements of many.jsonl were queued" in str(raised.value) or "nothing from" in str(
        raised.value
    )
    assert not list(box.pending_dir.glob(".*.tmp"))
