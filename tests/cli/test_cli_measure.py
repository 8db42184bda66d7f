"""`reachwatch measure` and `reachwatch control serve` as a user runs them (subprocesses, loopback)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import FAST, free_port, reachwatch

from reachwatch.probe.testing import DnsServer, HttpServer


def start_control(*extra: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reachwatch",
            "control",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *extra,
        ]
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"http://127.0.0.1:{port}/"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the control helper did not start")


@pytest.fixture
def lab_control(ca_file: Path) -> Iterator[str]:
    proc, url = start_control("--lab", "--ca-file", str(ca_file))
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def strict_control() -> Iterator[str]:
    proc, url = start_control()
    yield url
    proc.terminate()
    proc.wait(10)


def test_measure_https_with_lab_control(
    https_server: HttpServer, dns_server: DnsServer, lab_control: str, ca_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "m.jsonl"
    urls = [f"{https_server.named}/ok", f"{https_server.base}/redirect"]
    result = reachwatch("measure", *urls, "--control", lab_control, "--resolver", dns_server.resolver,
                        "--ca-file", str(ca_file), "--output", str(out), "--probe-asn", "AS64501",
                        "--probe-cc", "PK", *FAST)  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(m["input"] for m in lines) == sorted(urls)
    for m in lines:
        assert m["probe_ip"] == "127.0.0.1"
        assert re.fullmatch(r"\d{8}T\d{6}Z_webconnectivity_PK_64501_n1_[A-Za-z]{16}", m["report_id"])
        assert m["test_helpers"]["backend"]["address"] == lab_control
        keys = m["test_keys"]
        assert keys["control_failure"] is None
        assert keys["control"]["http_request"]["status_code"] == 200
        assert "x_probe_address" not in keys["control"]  # asked for, then taken out
        assert keys["requests"][0]["response"]["code"] == 200
    redirected = next(m for m in lines if m["input"].endswith("/redirect"))
    [hop] = redirected["test_keys"]["x_controls"]
    assert hop["url"].endswith("/ok")
    assert hop["control"]["http_request"]["title"] == "Test page"


def test_strict_control_refuses_loopback(
    http_server: HttpServer, dns_server: DnsServer, strict_control: str
) -> None:
    result = reachwatch("measure", f"{http_server.base}/ok", "--control", strict_control,
                        "--resolver", dns_server.resolver, "--no-progress", *FAST)  # fmt: skip
    assert result.returncode == 0, result.stderr
    keys = json.loads(result.stdout)["test_keys"]
    assert keys["requests"][0]["response"]["code"] == 200
    endpoint = f"127.0.0.1:{http_server.port}"
    assert keys["control"]["tcp_connect"][endpoint]["failure"] == "bogon_address_refused"


def test_unreachable_control_is_a_control_failure(http_server: HttpServer, dns_server: DnsServer) -> None:
    control = f"http://127.0.0.1:{free_port()}/"
    result = reachwatch(
        "measure", f"{http_server.base}/ok", "--control", control, "--resolver", dns_server.resolver, *FAST
    )
    assert result.returncode == 0, result.stderr
    keys = json.loads(result.stdout)["test_keys"]
    assert keys["control"] is None
    assert keys["control_failure"] == "connection_refused"


def test_worker_processes_write_every_url_once_under_one_report(
    https_server: HttpServer, dns_server: DnsServer, lab_control: str, ca_file: Path, tmp_path: Path
) -> None:
    urls = [f"{https_server.named}/ok?n={n}" for n in range(40)]
    out = tmp_path / "m.jsonl"
    result = reachwatch("measure", *urls, "--control", lab_control, "--resolver", dns_server.resolver,
                        "--ca-file", str(ca_file), "--output", str(out), "--workers", "3",
                        "--parallel", "7", *FAST)  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(m["input"] for m in lines) == sorted(urls)
    assert len({m["report_id"] for m in lines}) == 1
    assert all(m["test_keys"]["accessible"] is True for m in lines)


def test_a_dying_worker_is_reported_and_the_rest_is_kept(
    http_server: HttpServer, dns_server: DnsServer, tmp_path: Path
) -> None:
    """SIGKILL one worker while the others go on: the lines written stay whole, the exit says so."""
    urls = [f"{http_server.base}/hang?n={n}" for n in range(8)]
    out = tmp_path / "m.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "reachwatch", "measure", *urls, "--control", f"http://127.0.0.1:{free_port()}/",
         "--resolver", dns_server.resolver, "--output", str(out), "--workers", "2", "--parallel", "2", *FAST],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    children: list[str] = []
    deadline = time.monotonic() + 20
    while not children and time.monotonic() < deadline:
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        time.sleep(0.05)
    assert children, "no worker process started"
    time.sleep(0.5)  # each worker takes its first URL (of 2 s) at once
    os.kill(int(children[0]), signal.SIGKILL)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 2, stderr
    assert "1 of 2 probe worker processes failed" in stderr
    assert "Traceback" not in stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == len(urls) - 1  # the one the killed worker had in flight
    assert "1 of 8 URLs were not measured" in stderr
    assert len({m["input"] for m in lines}) == len(lines)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["http://127.0.0.1/", "--control", "http://127.0.0.1:1/", "--workers", "-1"], "--workers"),
        (["ftp://example.org/", "--control", "http://127.0.0.1:1/"], "not an http:// or https:// URL"),
        (["--list", "/nonexistent/list.csv", "--control", "http://127.0.0.1:1/"], "no such file"),
        (["http://127.0.0.1/", "--control", "nonsense"], "--control"),
        (["http://127.0.0.1/", "--control", "http://[::1/"], "--control: 'http://[::1/' is not a valid URL"),
        (
            ["http://[::1/", "--control", "http://127.0.0.1:1/"],
            "argument 1: 'http://[::1/' is not a valid URL",
        ),
        (["http://a..b/", "--control", "http://127.0.0.1:1/"], "argument 1: 'http://a..b/': host"),
        (
            ["http://127.0.0.1/", "--control", "http://127.0.0.1:1/", "--resolver", "dns.example"],
            "--resolver",
        ),
        (["http://127.0.0.1/", "--control", "http://127.0.0.1:1/", "--parallel", "0"], "--parallel"),
        (["--control", "http://127.0.0.1:1/"], "nothing to measure"),
        (
            ["http://127.0.0.1/", "--control", "http://127.0.0.1:1/", "--ca-file", "/nonexistent.pem"],
            "no such file",
        ),
    ],
)
def test_bad_input_exits_2(args: list[str], message: str) -> None:
    result = reachwatch("measure", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_control_serve_bad_port() -> None:
    result = reachwatch("control", "serve", "--port", "70000")
    assert result.returncode == 2
    assert "port" in result.stderr
