"""The collector as uvicorn serves it: HTTPS with its own certificate, and the submitter's address
from a trusted reverse proxy's X-Forwarded-For (real servers on loopback)."""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn

from collector.conftest import PROBE_V4, live_server
from reachwatch.collector import server
from reachwatch.collector.config import Settings
from reachwatch.collector.server import check_tls, trusted_proxies
from reachwatch.errors import UserError
from reachwatch.lab import ca

REACHWATCH = [sys.executable, "-m", "reachwatch"]
HOST = "localhost"  # the certificate's name; the server listens on 127.0.0.1


def _measurement(small_measurements: list[dict[str, Any]], mention: str) -> bytes:
    """A web_connectivity measurement whose body text mentions ``mention``."""
    m = next(dict(m) for m in small_measurements if m["test_name"] == "web_connectivity")
    m["test_keys"] = {**m["test_keys"], "x_note": f"seen from {mention} today"}
    return orjson.dumps(m)


def test_https_with_the_given_certificate(tmp_path: Path, small_measurements: list[dict[str, Any]]) -> None:
    """Served with a certificate of a private CA: clients that trust that CA get through, among them
    `reachwatch submit` given it in SSL_CERT_FILE; plain HTTP does not."""
    authority = ca.new_ca("test CA")
    key = ca.new_key()
    (tmp_path / "cert.pem").write_bytes(ca.cert_pem(ca.issue(authority, key, HOST)))
    (tmp_path / "key.pem").write_bytes(ca.key_pem(key))
    check_tls(tmp_path / "cert.pem", tmp_path / "key.pem")
    settings = Settings(
        store=str(tmp_path / "m.duckdb"), rate=0, tls_cert=tmp_path / "cert.pem", tls_key=tmp_path / "key.pem"
    )
    trust = ssl.create_default_context(cadata=ca.cert_pem(authority.cert).decode())
    with live_server(settings) as url:
        assert url.startswith("https://")
        with httpx.Client(verify=trust) as client:
            r = client.post(
                f"{url}/api/v1/measurements",
                content=_measurement(small_measurements, "nowhere"),
                extensions={"sni_hostname": HOST},
            )
            assert r.status_code == 200, r.text
            (uid,) = r.json()["measurement_uids"]
            got = client.get(f"{url}/api/v1/measurement/{uid}", extensions={"sni_hostname": HOST})
            assert got.status_code == 200
        with pytest.raises(httpx.HTTPError):  # plain HTTP to an HTTPS port is not served
            httpx.get(url.replace("https://", "http://") + "/api/v1/health", timeout=5)
        (tmp_path / "ca.pem").write_bytes(ca.cert_pem(authority.cert))
        (tmp_path / "one.jsonl").write_bytes(_measurement(small_measurements, "elsewhere") + b"\n")
        submit = subprocess.run(
            [
                *REACHWATCH,
                "submit",
                str(tmp_path / "one.jsonl"),
                "--collector",
                url.replace("127.0.0.1", HOST),
                "--outbox",
                str(tmp_path / "outbox"),
            ],
            env={**os.environ, "SSL_CERT_FILE": str(tmp_path / "ca.pem")},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert submit.returncode == 0 and "sent 1, rejected 0" in submit.stdout, submit.stdout + submit.stderr


def _behind(tmp_path: Path, geo_dbs: tuple[Path, Path], proxies: str) -> Settings:
    """A collector that attributes with the test databases and trusts ``proxies``."""
    asn, country = geo_dbs
    return Settings(
        store=str(tmp_path / "m.duckdb"), asn_db=asn, country_db=country, rate=0, trusted_proxies=proxies
    )


def _stored(url: str, body: bytes, forwarded: str) -> dict[str, Any]:
    r = httpx.post(f"{url}/api/v1/measurements", content=body, headers={"X-Forwarded-For": forwarded})
    assert r.status_code == 200, r.text
    (uid,) = r.json()["measurement_uids"]
    stored: dict[str, Any] = httpx.get(f"{url}/api/v1/measurement/{uid}").json()
    return stored


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_submitter(
    tmp_path: Path, geo_dbs: tuple[Path, Path], small_measurements: list[dict[str, Any]]
) -> None:
    settings = _behind(tmp_path, geo_dbs, "127.0.0.1")
    body = _measurement(small_measurements, PROBE_V4)
    with live_server(settings) as url:
        # what a client wrote first, then what the proxy appended: the proxy's entry is the one
        m = _stored(url, body, f"192.0.2.200, {PROBE_V4}")
        assert (m["probe_asn"], m["probe_cc"], m["probe_network_name"]) == ("AS64501", "PK", "Test Net")
        assert PROBE_V4 not in orjson.dumps(m).decode()
        assert m["test_keys"]["x_note"] == "seen from [scrubbed] today"
    assert PROBE_V4.encode() not in b"".join(
        p.read_bytes() for p in tmp_path.rglob("m.duckdb*") if p.is_file()
    )


def test_an_untrusted_peer_cannot_name_the_submitter(
    tmp_path: Path, geo_dbs: tuple[Path, Path], small_measurements: list[dict[str, Any]]
) -> None:
    settings = _behind(tmp_path, geo_dbs, "10.0.0.1")
    body = _measurement(small_measurements, "nowhere")
    claimed = orjson.loads(body)["probe_asn"]
    with live_server(settings) as url:
        m = _stored(url, body, PROBE_V4)
    assert m["probe_asn"] == claimed and m.get("x_unattributed") is True


def test_a_forwarded_value_that_is_not_an_address_is_no_submitter(
    tmp_path: Path, geo_dbs: tuple[Path, Path], small_measurements: list[dict[str, Any]]
) -> None:
    """A proxy that passes on what a client wrote must not make arbitrary text an address to scrub."""
    settings = _behind(tmp_path, geo_dbs, "127.0.0.1")
    with live_server(settings) as url:
        m = _stored(url, _measurement(small_measurements, "somewhere-else"), "somewhere-else")
    assert m.get("x_unattributed") is True
    assert m["test_keys"]["x_note"] == "seen from somewhere-else today"


def test_an_empty_nearest_entry_is_no_submitter_and_not_the_proxy(
    tmp_path: Path, geo_dbs: tuple[Path, Path], small_measurements: list[dict[str, Any]]
) -> None:
    """uvicorn's middleware left the proxy as the client for ``X-Forwarded-For: ADDR,``: the
    measurement was attributed to the proxy's network and ADDR stayed in it unscrubbed."""
    settings = _behind(tmp_path, geo_dbs, "127.0.0.1")
    with live_server(settings) as url:
        m = _stored(url, _measurement(small_measurements, PROBE_V4), f"{PROBE_V4},")
    assert m.get("x_unattributed") is True
    assert m["test_keys"]["x_note"] == f"seen from {PROBE_V4} today"  # no submitter: nothing to scrub


@pytest.mark.parametrize(
    ("value", "expected"),
    [("127.0.0.1", "127.0.0.1"), (" 10.0.0.0/8, ::1 ", "10.0.0.0/8,::1"), ("*", "*")],
)
def test_trusted_proxies_are_addresses_or_networks(value: str, expected: str) -> None:
    assert trusted_proxies(value) == expected


@pytest.mark.parametrize("value", ["", " , ", "proxy.example", "10.0.0.0/33"])
def test_a_trusted_proxy_that_is_no_address_is_refused(value: str) -> None:
    with pytest.raises(UserError):
        trusted_proxies(value)


def test_tls_files_are_checked_before_serving(tmp_path: Path) -> None:
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(UserError, match="go together"):
        check_tls(tmp_path / "junk.pem", None)
    with pytest.raises(UserError, match="no such file"):
        check_tls(tmp_path / "missing.pem", tmp_path / "junk.pem")
    with pytest.raises(UserError, match="cannot use this certificate"):
        check_tls(tmp_path / "junk.pem", tmp_path / "junk.pem")


def test_a_stop_does_not_wait_for_ever_on_a_trickling_upload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upload trickling a byte every few seconds held a SIGTERM for as long as it went on
    (an outside check, session 16): the stop now waits GRACEFUL_SHUTDOWN, then cancels it."""
    monkeypatch.setattr(server, "GRACEFUL_SHUTDOWN", 1)
    running = uvicorn.Server(
        server.uvicorn_config(Settings(store=str(tmp_path / "m.duckdb"), rate=0), "127.0.0.1", 0)
    )
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    while not running.started:
        assert thread.is_alive()
        time.sleep(0.01)
    port = running.servers[0].sockets[0].getsockname()[1]
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST /api/v1/measurements HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n{")
        running.should_exit = True
        for _ in range(60):  # a byte every 0.25 s for 15 s at most, while the stop goes on
            if not thread.is_alive():
                break
            with contextlib.suppress(OSError):
                sock.sendall(b" ")
            time.sleep(0.25)
        stopped = not thread.is_alive()  # while the upload still trickled
        sock.settimeout(5)
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                answer += chunk
    thread.join(5)
    assert stopped
    # answered, not uvicorn's bare 500 after a traceback
    assert answer.startswith(b"HTTP/1.1 503 ") and b"retry-after: 5" in answer.lower(), answer
    assert b"the collector is stopping" in answer
