"""Request bodies as clients really send them: compressed ones get a clear 415, never a JSON error
about invalid UTF-8, and nothing is stored."""

from __future__ import annotations

import gzip
import socket
import zlib
from pathlib import Path
from typing import Any

import orjson
import pytest

from collector.conftest import collector, live_server
from collector.test_app import OPEN, web
from reachwatch.collector import http
from reachwatch.collector.config import Settings


@pytest.mark.parametrize(
    ("coding", "compress"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("br", lambda b: b),
        ("GZIP, identity", gzip.compress),
    ],
)
async def test_compressed_bodies_are_415(
    tmp_path: Path, real_measurements: list[dict[str, Any]], coding: str, compress: Any
) -> None:
    m = web(real_measurements)[0]
    headers = {"content-encoding": coding, "content-type": "application/json"}
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0, ingest_workers=0)) as (_, http):
        rid = (await http.post("/report", json=OPEN)).json()["report_id"]
        for path, body in (
            ("/report", orjson.dumps(OPEN)),
            (f"/report/{rid}", orjson.dumps({"format": "json", "content": m})),
            ("/api/v1/measurements", orjson.dumps(m)),
        ):
            r = await http.post(path, content=compress(body), headers=headers)
            assert r.status_code == 415, (path, r.status_code, r.text)
            assert "Content-Encoding" in r.json()["error"] and "uncompressed" in r.json()["error"]
        assert (await http.get("/api/v1/measurements")).json()["metadata"]["count"] == 0
        for coding_ok in ("identity", ""):
            r = await http.post(
                "/api/v1/measurements", content=orjson.dumps(m), headers={"content-encoding": coding_ok}
            )
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
