"""A client that sends part of its request's headers, or nothing, gets a 408 and is closed."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from collector.conftest import live_server
from collector.test_app import web
from reachwatch.collector import header_timeout
from reachwatch.collector.config import Settings


def _answer(sock: socket.socket) -> bytes:
    sock.settimeout(10)
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    return out


@pytest.mark.parametrize("sent", [b"", b"POST /api/v1/measurements HTTP/1.1\r\nHost: x\r\n"])
def test_headers_that_stop_arriving_are_a_408(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sent: bytes
) -> None:
    """uvicorn has no limit on how long headers take: such a connection stayed open for ever."""
    monkeypatch.setattr(header_timeout, "HEADERS_TIMEOUT", 0.5)
    with live_server(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(sent)
            t0 = time.monotonic()
            answer = _answer(sock)
        assert time.monotonic() - t0 < 5
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408 ")
        assert "headers did not arrive within 0.5 s" in json.loads(body)["error"]


def test_a_kept_alive_connection_is_timed_again_for_its_next_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(header_timeout, "HEADERS_TIMEOUT", 1.0)
    with live_server(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as sock:
            for _ in range(2):  # each request's headers in time, 1.2 s after the connection
                time.sleep(0.6)
                sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")  # the third's stop
            answer = _answer(sock)
        assert answer.count(b"HTTP/1.1 200 ") == 2 and b"HTTP/1.1 408 " in answer
        assert httpx.get(f"{url}/api/v1/health").status_code == 200


def test_headers_past_the_limit_are_a_431_and_the_connection_closed(tmp_path: Path) -> None:
    """httptools kept a 128 MB header until it ended and the request got a 200 (an outside check,
    session 15): past MAX_HEADER_BYTES the client gets a 431 and the connection is closed."""
    with live_server(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")
            junk = b"X-Junk: " + b"a" * 8192 + b"\r\n"
            with contextlib.suppress(OSError):  # closed by the collector while still sending
                for _ in range(64):  # 512 KiB
                    sock.sendall(junk)
            answer = _answer(sock)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 431 "), answer[:200]
        assert str(header_timeout.MAX_HEADER_BYTES) in json.loads(body)["error"]
        # long but within the limit, on a kept-alive connection: answered
        with httpx.Client(base_url=url) as client:
            for _ in range(2):
                r = client.get("/api/v1/health", headers={"x-long": "a" * 30_000})
                assert r.status_code == 200


def test_clients_gone_before_their_pipelined_answers_are_no_internal_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, real_measurements: list[dict[str, Any]]
) -> None:
    """Requests pipelined by clients that closed without reading: the one running when the
    connection went wrote to the closed transport, logged as "internal error ... RuntimeError" and
    "ASGI callable returned without completing response" (an outside check, session 16)."""
    with live_server(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as url:
        body = b"\n".join(orjson.dumps(m) for m in web(real_measurements))
        assert httpx.post(f"{url}/api/v1/measurements", content=body).status_code == 200
        host, port = url.removeprefix("http://").split(":")
        request = b"GET /api/v1/measurements?limit=1000 HTTP/1.1\r\nHost: x\r\n\r\n"
        for _ in range(5):
            with socket.create_connection((host, int(port))) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.sendall(request * 50)
                time.sleep(0.5)  # answers pile up unread, then the client leaves
        assert httpx.get(f"{url}/api/v1/health").status_code == 200
        time.sleep(0.5)
    assert "internal error" not in caplog.text and "without completing" not in caplog.text
