"""What the probe takes as a control: only a test-helper answer, never any JSON object."""

from __future__ import annotations

from typing import Any

import pytest

from reachwatch.probe.control_client import is_th_answer

ANSWER: dict[str, Any] = {
    "tcp_connect": {"93.184.215.14:443": {"status": True, "failure": None}},
    "tls_handshake": {"93.184.215.14:443": {"server_name": "example.org", "status": True, "failure": None}},
    "quic_handshake": {},
    "http_request": {"body_length": 1256, "discovered_h3_endpoint": "", "failure": None, "title": "Example",
                     "headers": {"Content-Type": "text/html"}, "status_code": 200},
    "http3_request": None,
    "dns": {"failure": None, "addrs": ["93.184.215.14"]},
    "ip_info": {"93.184.215.14": {"asn": 15133, "flags": 11}},
}  # fmt: skip


def test_a_real_answer_is_taken() -> None:
    assert is_th_answer(ANSWER)
    failed = {**ANSWER, "dns": {"failure": "dns_nxdomain_error", "addrs": None}, "tcp_connect": {}}
    failed["http_request"] = {**ANSWER["http_request"], "status_code": -1, "body_length": -1, "failure": "x"}
    assert is_th_answer(failed)


@pytest.mark.parametrize(
    "change",
    [
        {"dns": "x"},
        {"tcp_connect": []},
        {"http_request": None},
        {"http_request": {"status_code": "abc"}},
        {"http_request": {"status_code": True}},
        {"http_request": {"body_length": "x"}},
        {"dns": {"addrs": [1, None]}},
        {"dns": {"addrs": [], "failure": 5}},
        {"tcp_connect": {"1.2.3.4:80": 5}},
        {"tls_handshake": None},
    ],
)
def test_other_json_is_not_a_control(change: dict[str, Any]) -> None:
    assert not is_th_answer({**ANSWER, **change})


def test_an_empty_object_is_not_a_control() -> None:
    assert not is_th_answer({})
