"""Request bodies as clients really send them: compressed (zstd, gzip, deflate) ones are taken, held
to --max-body once decompressed; a truncated or corrupt one is a 400, an unknown coding a 415, never a
JSON error about invalid UTF-8, and nothing is stored."""

from __future__ import annotations

import gzip
import socket
import time
import zlib
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import zstandard

from collector.conftest import MINIMAL, collector, live_server
from collector.test_app import OPEN, web
from reachwatch.collector import http
from reachwatch.collector.batch import POOLED_LINES
from reachwatch.collector.config import Settings
from reachwatch.store.compression import compress


def _raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


CODINGS = [
    ("zstd", zstandard.ZstdCompressor().compress),
    ("zstd", compress),  # with the store's dictionary, as the outbox sends
    ("zstd", lambda b: zstandard.ZstdCompressor().compress(b[:100]) + compress(b[100:])),  # two frames
    ("gzip", gzip.compress),
    ("x-gzip", lambda b: gzip.compress(b[:50]) + gzip.compress(b[50:])),  # two members
    ("deflate", zlib.compress),
    ("deflate", _raw_deflate),  # as some clients send it
    ("GZIP, identity", gzip.compress),
    ("gzip, zstd", lambda b: compress(gzip.compress(b))),
]


@pytest.mark.parametrize(("coding", "packed"), CODINGS)
async def test_compressed_bodies_are_taken_on_every_route(
    tmp_path: Path, real_measurements: list[dict[str, Any]], coding: str, packed: Any
) -> None:
    """A volunteer on metered data sends ~4.7x fewer bytes (zstd): stored as if sent uncompressed."""
    ms = web(real_measurements)
    many = [{**ms[i % len(ms)], "input": f"https://site{i}.example/"} for i in range(POOLED_LINES + 2)]
    headers = {"content-encoding": coding, "content-type": "application/json"}
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0, ingest_workers=1)) as (_, http):
        r = await http.post("/report", content=packed(orjson.dumps(OPEN)), headers=headers)
        rid = r.json()["report_id"]
        r = await http.post(
            f"/report/{rid}",
            content=packed(orjson.dumps({"format": "json", "content": ms[0]})),
            headers=headers,
        )
        assert r.status_code == 200, r.text
        small = b"\n".join(orjson.dumps(m) for m in ms[1:3])
        big = b"\n".join(orjson.dumps(m) for m in many)  # goes to the batch workers
        for body in (small, big):
            r = await http.post("/api/v1/measurements", content=packed(body), headers=headers)
            assert r.status_code == 200, r.text
        # the same measurements again, uncompressed: already stored
        r = await http.post("/api/v1/measurements", content=small + b"\n" + big)
        assert r.status_code == 200, r.text
        assert (await http.get("/api/v1/measurements")).json()["metadata"]["count"] == 3 + len(many)
        assert (
            await http.post(f"/report/{rid}/close", content=packed(b"{}"), headers=headers)
        ).status_code == 200


@pytest.mark.parametrize(
    ("coding", "body", "status", "said"),
    [
        (
            "br",
            b"{}",
            415,
            "'br' is not supported: send the body uncompressed, or compressed with zstd, gzip or deflate",
        ),
        ("gzip, " * 4 + "gzip", b"{}", 415, "5 codings one over the other"),
        (
            "zstd",
            compress(b"{}" * 1000)[:-3],
            400,
            "not valid zstd (its Content-Encoding): it ends inside a compressed frame",
        ),
        ("gzip", gzip.compress(b"{}" * 1000)[:-3], 400, "not valid gzip"),
        ("zstd", b"not zstd at all", 400, "not valid zstd"),
        ("gzip", b"not gzip at all", 400, "not valid gzip"),
        ("zstd", compress(b"{}") + b"trailing", 400, "not valid zstd"),
        ("deflate", zlib.compress(b"{}") + b"trailing", 400, "8 bytes follow the end of the deflate stream"),
        # a small body that grows past --max-body (a bomb): refused as it grows
        (
            "zstd",
            zstandard.ZstdCompressor(level=19).compress(b" " * (50 << 20)),
            413,
            "larger than 1000000 bytes once decompressed",
        ),
        ("gzip", gzip.compress(b" " * (5 << 20)), 413, "larger than 1000000 bytes once decompressed"),
        # a frame naming a dictionary this collector does not have
        (
            "zstd",
            zstandard.ZstdCompressor(
                dict_data=zstandard.train_dictionary(1024, [b'{"a": %d}' % i for i in range(2000)])
            ).compress(b"{}"),
            400,
            "which this collector does not have",
        ),
    ],
)
async def test_bad_compressed_bodies_are_4xx_and_store_nothing(
    tmp_path: Path, real_measurements: list[dict[str, Any]], coding: str, body: bytes, status: int, said: str
) -> None:
    m = orjson.dumps(web(real_measurements)[0])
    headers = {"content-encoding": coding}
    settings = Settings(store=str(tmp_path / "m.duckdb"), rate=0, ingest_workers=0, max_body=1_000_000)
    async with collector(settings) as (_, http):
        rid = (await http.post("/report", json=OPEN)).json()["report_id"]
        for path in ("/report", f"/report/{rid}", "/api/v1/measurements"):
            r = await http.post(path, content=body, headers=headers)
            assert r.status_code == status, (path, r.status_code, r.text)
            assert said in r.json()["error"], r.json()["error"]
        assert (await http.get("/api/v1/measurements")).json()["metadata"]["count"] == 0
        for coding_ok in ("identity", ""):
            r = await http.post("/api/v1/measurements", content=m, headers={"content-encoding": coding_ok})
            assert r.status_code == 200, (coding_ok, r.text)


@pytest.mark.parametrize("path", ["/api/v1/measurements", "/report"])
def test_a_body_that_stops_arriving_is_a_408(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """A client that declares more than it sends and keeps the connection open gets a 408 once no
    byte has come for the idle timeout, instead of holding the request for ever."""
    monkeypatch.setattr(http, "BODY_IDLE_TIMEOUT", 0.5)
    with live_server(Settings(store=str(tmp_path / "m.duckdb"), rate=0, ingest_workers=0)) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: c\r\nContent-Type: application/json\r\n"
                'Content-Length: 1000\r\n\r\n{"a": '.encode()
            )
            answer = sock.recv(4096)
            while b"\r\n\r\n" in answer and not answer.endswith(b"}"):  # the body may come apart
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"no part of the request body arrived" in answer


def test_bodies_on_their_way_are_held_to_a_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """80 connections each sending 16 MB and holding back the last byte took the collector from
    188 MB to 1.5 GB (an outside check, session 17): the bytes of bodies still arriving count
    against one budget, past which a request is a 503 with Retry-After; one sender (a /24) holds at
    most a share of it, so that it cannot keep every other volunteer out; given back when done."""
    monkeypatch.setattr(http, "BODY_BUDGET", 150_000)  # with --max-body 100000: 200,000 in all
    settings = Settings(store=str(tmp_path / "m.duckdb"), rate=0, ingest_workers=0, max_body=100_000)
    head = b"POST /api/v1/measurements HTTP/1.1\r\nHost: c\r\nContent-Length: 90000\r\n\r\n"

    def upload(source: str) -> socket.socket:
        sock = socket.create_connection((host, int(port)), timeout=10, source_address=(source, 0))
        sock.sendall(head + b" " * 80_000)
        return sock

    def refused(sock: socket.socket) -> bytes:
        answer = sock.recv(4096)
        sock.close()
        assert answer.startswith(b"HTTP/1.1 503"), answer[:200]
        assert b"retry-after: 1" in answer.lower() and b"as many bytes as it holds" in answer
        return answer

    def held(size: int) -> None:
        for _ in range(100):  # until the collector has read them
            if http.held_bytes() == size:
                return
            time.sleep(0.05)
        assert http.held_bytes() == size

    with live_server(settings) as url:
        host, port = url.removeprefix("http://").split(":")
        kept: list[socket.socket] = []
        try:
            kept.append(upload("127.0.0.2"))
            held(80_000)
            refused(upload("127.0.0.3"))  # the same /24: past its share (half the budget here)
            kept.append(upload("127.0.1.2"))  # another sender: room
            held(160_000)
            refused(upload("127.0.2.2"))  # past the budget
        finally:
            for sock in kept:
                sock.close()
        held(0)
        m = orjson.dumps(dict(MINIMAL, input="http://a.example/"))
        assert httpx.post(f"{url}/api/v1/measurements", content=m).status_code == 200
