"""What the probe takes as a control: only a test-helper answer, never any JSON object."""

from __future__ import annotations

import json
from pathlib import Path
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
        {"tls_handshake": []},
        {"http_request": {"headers": "x"}},
    ],
)
def test_other_json_is_not_a_control(change: dict[str, Any]) -> None:
    assert not is_th_answer({**ANSWER, **change})


def test_an_empty_object_is_not_a_control() -> None:
    assert not is_th_answer({})


def test_go_nulls_for_empty_maps_are_taken() -> None:
    """OONI's helper (Go) writes an empty map as null: a real v0.4 answer has "tcp_connect": null."""
    answer = {**ANSWER, "tcp_connect": None, "tls_handshake": None}
    answer["http_request"] = {**ANSWER["http_request"], "headers": None}
    assert is_th_answer(answer)


def test_every_control_of_the_shared_ooni_measurements_is_taken() -> None:
    shared = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ooni"
    if not shared.is_dir():
        pytest.skip(f"shared OONI data absent: {shared}")
    controls = [
        m["test_keys"]["control"]
        for f in sorted(shared.glob("*.jsonl"))
        for line in f.read_text().splitlines()
        if line.strip() and isinstance((m := json.loads(line)).get("test_keys"), dict)
        and isinstance(m["test_keys"].get("control"), dict) and m["test_keys"]["control"]
    ]  # fmt: skip
    assert controls
    assert [c for c in controls if not is_th_answer(c)] == []
