"""An early answer reaches a client that sends its whole body before reading, over real sockets."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from collector.conftest import live_server
from reachwatch.collector.config import Settings
from reachwatch.collector.linger import closes_after

BODY = b"a" * 8_000_000  # far more than the sockets buffer: the answer comes while it is being sent


@pytest.mark.parametrize(
    ("path", "status"),
    [("/api/v1/measurements", 413), ("/report/not-a-report", 404), ("/report", 413)],
)
def test_a_connection_close_client_reads_the_early_answer(tmp_path: Path, path: str, status: int) -> None:
    """urllib sends ``Connection: close`` and reads only once all is sent: without the lingering
    read it saw 'connection reset by peer' instead of the answer."""
    settings = Settings(store=str(tmp_path / "m.duckdb"), rate=0, max_body=100_000, ingest_workers=0)
    with live_server(settings) as url:
        for _ in range(3):
            with pytest.raises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(urllib.request.Request(url + path, data=BODY), timeout=30)
            assert caught.value.code == status
            assert b'"error"' in caught.value.read()


def test_a_client_waiting_for_100_continue_gets_the_answer_without_sending(tmp_path: Path) -> None:
    settings = Settings(store=str(tmp_path / "m.duckdb"), rate=0, max_body=100_000, ingest_workers=0)
    with live_server(settings) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                b"POST /api/v1/measurements HTTP/1.1\r\nHost: c\r\nConnection: close\r\n"
                b"Expect: 100-continue\r\nContent-Length: 8000000\r\n\r\n"
            )
            answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 413"), answer


@pytest.mark.parametrize("path", ["/api/v1/measurements", "/report/not-a-report"])
def test_a_client_that_pauses_mid_body_gets_the_answer_at_once(tmp_path: Path, path: str) -> None:
    """The answer is sent before the rest of the body is read (found by an outside check: a client
    that sent 100 KB of a declared 30 MB and waited got its 413 only after the 30 s linger)."""
    settings = Settings(store=str(tmp_path / "m.duckdb"), rate=0, max_body=100_000, ingest_workers=0)
    with live_server(settings) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: c\r\nConnection: close\r\n".encode()
                + b"Content-Length: 30000000\r\n\r\n"
                + b"a" * 200_000
            )
            answer = b""
            while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
                chunk = sock.recv(65536)  # within the socket's 10 s, far under the 30 s linger
                assert chunk, answer
                answer += chunk
        assert answer.split(b" ")[1] in (b"413", b"404"), answer
        assert b'"error"' in answer


def test_which_connections_close() -> None:
    def scope(version: str, *headers: tuple[bytes, bytes]) -> dict[str, object]:
        return {"http_version": version, "headers": list(headers)}

    assert closes_after(scope("1.0"))
    assert closes_after(scope("1.1", (b"connection", b"Close")))
    assert closes_after(scope("1.1", (b"connection", b"keep-alive, close")))
    assert not closes_after(scope("1.1"))
    assert not closes_after(scope("1.1", (b"connection", b"keep-alive")))
