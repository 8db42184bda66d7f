"""DNS over UDP that misbehaves (garbage, wrong ids, injection) and certificates that fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from reachwatch.probe.config import ProbeConfig, Timeouts
from reachwatch.probe.measure import measure_url
from reachwatch.probe.testing import DnsServer, HttpServer, LoopThread, ThrowawayCA, server_context

FAST = Timeouts(dns=1.0, tcp=1.0, tls=1.0, http=1.0)


def udp_queries(keys: dict, qtype: str) -> list[dict]:
    return [q for q in keys["queries"] if q["engine"] == "udp" and q["query_type"] == qtype]


async def test_garbage_then_valid_answer(http_server: HttpServer, loop_thread: LoopThread) -> None:
    server = DnsServer(loop_thread, mode="garbage")
    try:
        config = ProbeConfig(timeouts=FAST, resolver=("127.0.0.1", server.port))
        keys = await measure_url(f"http://localhost:{http_server.port}/ok", config, None)
    finally:
        server.close()
    [a] = udp_queries(keys, "A")
    assert a["failure"] is None
    assert a["answers"] == [{"answer_type": "A", "ipv4": "127.0.0.1", "ttl": 60}]
    assert a["resolver_address"] == f"127.0.0.1:{server.port}"
    failures = {d["failure"] for d in keys["x_dns_duplicate_responses"]}
    assert {"dns_server_misbehaving", "dns_reply_with_wrong_query_id"} <= failures
    assert keys["requests"][0]["response"]["code"] == 200


async def test_injected_and_real_answers_both_kept(http_server: HttpServer, loop_thread: LoopThread) -> None:
    server = DnsServer(loop_thread, mode="inject", injected="127.0.0.2")
    try:
        config = ProbeConfig(timeouts=FAST, resolver=("127.0.0.1", server.port))
        keys = await measure_url(f"http://localhost:{http_server.port}/ok", config, None)
    finally:
        server.close()
    [a] = udp_queries(keys, "A")
    assert a["answers"][0]["ipv4"] == "127.0.0.2"
    late = [d for d in keys["x_dns_duplicate_responses"] if d["query_type"] == "A"]
    assert [d["answers"][0]["ipv4"] for d in late] == ["127.0.0.1"]
    assert late[0]["transaction_id"] == a["transaction_id"]
    [aaaa] = udp_queries(keys, "AAAA")
    assert aaaa["failure"] == "dns_no_answer"
    tried = {c["ip"]: c["status"]["failure"] for c in keys["tcp_connect"]}
    assert tried == {"127.0.0.1": None, "127.0.0.2": "connection_refused"}


async def test_a_lost_query_is_sent_again(http_server: HttpServer, loop_thread: LoopThread) -> None:
    server = DnsServer(loop_thread, mode="lossy")
    try:
        config = ProbeConfig(
            timeouts=Timeouts(dns=4.0, tcp=1, tls=1, http=1), resolver=("127.0.0.1", server.port)
        )
        keys = await measure_url(f"http://localhost:{http_server.port}/ok", config, None)
    finally:
        server.close()
    [a] = udp_queries(keys, "A")
    assert a["failure"] is None and a["answers"][0]["ipv4"] == "127.0.0.1"
    assert 0.9 < a["t"] - a["t0"] < 2.0  # answered to the copy sent after 1 s
    assert sorted(server.received.values()) == [2, 2]  # each query twice: no copy after its answer


async def test_silent_resolver_times_out(http_server: HttpServer, closed_port: int) -> None:
    del http_server
    config = ProbeConfig(timeouts=Timeouts(0.3, 1, 1, 1), resolver=("127.0.0.1", closed_port))
    keys = await measure_url("http://localhost:9/", config, None)
    failures = {q["failure"] for q in udp_queries(keys, "A") + udp_queries(keys, "AAAA")}
    assert failures <= {"connection_refused", "generic_timeout_error"}


async def test_a_resolver_that_never_answers_gets_each_query_three_times(loop_thread: LoopThread) -> None:
    server = DnsServer(loop_thread, mode="silent")  # the probe sends each query at 0, 1 and 2 s
    try:
        config = ProbeConfig(
            timeouts=Timeouts(dns=2.5, tcp=1, tls=1, http=1), resolver=("127.0.0.1", server.port)
        )
        keys = await measure_url("http://localhost:9/", config, None)
    finally:
        server.close()
    assert {q["failure"] for q in udp_queries(keys, "A") + udp_queries(keys, "AAAA")} == {
        "generic_timeout_error"
    }
    assert sorted(server.received.values()) == [3, 3]


@pytest.mark.parametrize(
    ("names", "expired", "trusted", "failure"),
    [
        (["wrong.example"], False, True, "ssl_invalid_hostname"),
        (["localhost", "127.0.0.1"], True, True, "ssl_invalid_certificate"),
        (["localhost", "127.0.0.1"], False, False, "ssl_unknown_authority"),
    ],
    ids=["wrong-host", "expired", "untrusted"],
)
async def test_certificate_failures(
    loop_thread: LoopThread, ca: ThrowawayCA, tmp_path: Path, names: list[str], expired: bool, trusted: bool,
    failure: str,
) -> None:  # fmt: skip
    issuer = ca if trusted else ThrowawayCA(tmp_path, name="other CA")
    leaf = issuer.issue(names, expired=expired, label=f"leaf-{failure}")
    server = HttpServer(loop_thread, server_context(leaf))
    try:
        config = ProbeConfig(timeouts=FAST, resolver=None, ca_file=ca.ca_file)
        keys = await measure_url(f"{server.named}/ok", config, None)
    finally:
        server.close()
    [handshake] = keys["tls_handshakes"]
    assert handshake["failure"] == failure
    assert handshake["peer_certificates"], "the chain is kept even when verification fails"
    assert handshake["x_bytes_received"] > 0
    assert keys["requests"] == [], "no GET is sent when the handshake fails (as OONI v0.5)"
    assert keys["http_experiment_failure"] == failure


async def test_silent_tls_server_times_out(loop_thread: LoopThread, ca: ThrowawayCA) -> None:
    server = HttpServer(loop_thread, silent=True)
    try:
        config = ProbeConfig(timeouts=Timeouts(1, 1, 0.3, 1), resolver=None, ca_file=ca.ca_file)
        keys = await measure_url(f"https://127.0.0.1:{server.port}/", config, None)
    finally:
        server.close()
    [handshake] = keys["tls_handshakes"]
    assert handshake["failure"] == "generic_timeout_error"
    assert handshake["x_bytes_received"] == 0
