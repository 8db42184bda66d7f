"""The probe against real loopback servers: success, refusal, silence, endless bodies, redirects."""

from __future__ import annotations

import time
from pathlib import Path

from reachwatch.probe.config import ProbeConfig, Timeouts
from reachwatch.probe.measure import measure_url
from reachwatch.probe.testing import DnsServer, HttpServer, LoopThread

FAST = Timeouts(dns=1.0, tcp=1.0, tls=1.0, http=1.0)


def cfg(**kwargs: object) -> ProbeConfig:
    base: dict[str, object] = {"timeouts": FAST, "resolver": None}
    base.update(kwargs)
    return ProbeConfig(**base)  # type: ignore[arg-type]


async def test_http_success_ip_literal_skips_dns(http_server: HttpServer) -> None:
    keys = await measure_url(f"{http_server.base}/ok", cfg(), None)
    assert keys["queries"] == []
    [connect] = keys["tcp_connect"]
    assert connect["status"] == {"success": True, "failure": None, "blocked": None}
    [request] = keys["requests"]
    assert request["failure"] is None
    assert request["response"]["code"] == 200
    assert "<title>Test page</title>" in request["response"]["body"]
    assert request["request"]["headers"]["User-Agent"].startswith("Mozilla/5.0")
    assert request["x_bytes_received"] > len(request["response"]["body"])
    assert request["tags"] == ["depth=0"]


async def test_https_success_by_name(https_server: HttpServer, dns_server: DnsServer, ca_file: Path) -> None:
    config = cfg(ca_file=ca_file, resolver=("127.0.0.1", dns_server.port))
    keys = await measure_url(f"{https_server.named}/ok", config, None)
    engines = {(q["engine"], q["query_type"]) for q in keys["queries"]}
    assert engines == {("getaddrinfo", "ANY"), ("udp", "A"), ("udp", "AAAA")}
    [handshake] = keys["tls_handshakes"]
    assert handshake["failure"] is None
    assert handshake["server_name"] == "localhost"
    assert handshake["tls_version"].startswith("TLS")
    assert handshake["negotiated_protocol"] in ("http/1.1", "")
    assert len(handshake["peer_certificates"]) >= 1
    assert handshake["x_bytes_received"] > 0
    assert keys["requests"][0]["response"]["code"] == 200


async def test_connection_refused(closed_port: int) -> None:
    keys = await measure_url(f"http://127.0.0.1:{closed_port}/", cfg(), None)
    assert keys["tcp_connect"][0]["status"]["failure"] == "connection_refused"
    assert keys["requests"] == []
    assert keys["http_experiment_failure"] == "connection_refused"


async def test_silent_server_times_out(loop_thread: LoopThread) -> None:
    server = HttpServer(loop_thread, silent=True)
    try:
        start = time.monotonic()
        keys = await measure_url(f"{server.base}/", cfg(timeouts=Timeouts(1, 1, 1, 0.5)), None)
        assert time.monotonic() - start < 2
    finally:
        server.close()
    assert keys["tcp_connect"][0]["status"]["success"] is True
    request = keys["requests"][0]
    assert request["failure"] == "generic_timeout_error"
    assert request["x_bytes_received"] == 0


async def test_endless_body_is_truncated(http_server: HttpServer) -> None:
    start = time.monotonic()
    keys = await measure_url(f"{http_server.base}/endless", cfg(timeouts=Timeouts(1, 1, 1, 5)), None)
    assert time.monotonic() - start < 5
    response = keys["requests"][0]["response"]
    assert response["body_is_truncated"] is True
    assert len(response["body"]) == 512 * 1024
    assert keys["requests"][0]["failure"] is None


async def test_failure_after_headers_keeps_response(http_server: HttpServer) -> None:
    keys = await measure_url(f"{http_server.base}/short", cfg(), None)
    request = keys["requests"][0]
    assert request["failure"] == "eof_error"
    assert request["response"]["code"] == 200
    assert request["response"]["body"] == "only ten b"


async def test_redirect_is_followed(http_server: HttpServer) -> None:
    keys = await measure_url(f"{http_server.base}/redirect", cfg(), None)
    assert [r["request"]["url"] for r in keys["requests"]] == [
        f"{http_server.base}/ok",
        f"{http_server.base}/redirect",
    ]
    assert keys["requests"][0]["tags"] == ["depth=1"]
    assert [c["tags"] for c in keys["tcp_connect"]] == [["depth=0"], ["depth=1"]]


async def test_redirect_loop_stops_after_ten(http_server: HttpServer) -> None:
    keys = await measure_url(f"{http_server.base}/loop/0", cfg(), None)
    assert len(keys["requests"]) == 11
    assert keys["requests"][0]["failure"] == "http_too_many_redirects"
    assert keys["requests"][0]["tags"] == ["depth=10"]
    assert all(r["failure"] is None for r in keys["requests"][1:])


async def test_an_upper_case_https_scheme_gets_tls(
    https_server: HttpServer, dns_server: DnsServer, ca_file: Path
) -> None:
    """RFC 3986 schemes are case-insensitive. A redirect to ``HTTPS://host/`` connected to 443
    and sent plain HTTP there (the TLS check was ``startswith("https")``): the site closed the
    connection and a 2,000-site lab run judged such a chain ``site.down.http``."""
    config = cfg(ca_file=ca_file, resolver=("127.0.0.1", dns_server.port))
    keys = await measure_url("HTTPS" + https_server.named.removeprefix("https") + "/ok", config, None)
    [handshake] = keys["tls_handshakes"]
    assert handshake["failure"] is None
    assert keys["requests"][0]["failure"] is None and keys["requests"][0]["response"]["code"] == 200
