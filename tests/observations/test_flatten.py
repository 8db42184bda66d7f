"""flatten(): any measurement shape becomes records; nothing raises."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reachwatch.observations import Observations, flatten

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "ooni"


def _m(tk: Any, **extra: Any) -> dict[str, Any]:
    return {"test_name": "web_connectivity", "input": "https://Site.Example/x", "test_keys": tk, **extra}


def test_current_shape() -> None:
    tk = {
        "queries": [{"hostname": "site.example", "engine": "getaddrinfo", "query_type": "ANY", "failure": None,
                     "answers": [{"answer_type": "A", "ipv4": "1.2.3.4"}, {"answer_type": "CNAME", "hostname": "x"},
                                 {"answer_type": "AAAA", "ipv6": "::1"}], "tags": ["depth=0"], "transaction_id": 1}],
        "tcp_connect": [{"ip": "1.2.3.4", "port": 443, "status": {"success": True, "failure": None},
                         "tags": ["depth=1", "fetch_body=false"], "transaction_id": 2}],
        "tls_handshakes": [{"address": "1.2.3.4:443", "server_name": "site.example", "failure": "connection_reset",
                            "tags": ["depth=1"], "transaction_id": 2, "x_bytes_received": 7}],
        "requests": [{"request": {"url": "https://site.example/x"}, "failure": None, "tags": ["depth=0"],
                      "response": {"code": 200, "headers": {"X-A": "1"}, "body": "<TITLE>Hi there</title>é"}}],
        "control": {"dns": {"failure": None, "addrs": ["1.2.3.4", "cname.example"]},
                    "tcp_connect": {"1.2.3.4:443": {"status": True, "failure": None}},
                    "http_request": {"status_code": 200, "body_length": 10, "title": "Hi", "headers": {"X-A": "1"}},
                    "ip_info": {"1.2.3.4": {"asn": 13335}}},
        "x_controls": [{"url": "https://other.example/", "control": {"dns": {"failure": "dns_name_error", "addrs": []}}}],
    }  # fmt: skip
    obs = flatten(_m(tk))
    assert obs.hostname == "site.example"
    assert obs.dns[0].addrs == ("1.2.3.4", "::1")
    assert obs.tcp[0].fetch_body is False and obs.tcp[0].depth == 1 and obs.tcp[0].address == "1.2.3.4:443"
    assert obs.tls[0].bytes_received == 7 and obs.tls[0].failure == "connection_reset"
    h = obs.http[0]
    assert (h.status_code, h.title, h.body_length, h.header_keys) == (200, "Hi there", 25, frozenset({"x-a"}))
    ctrl = obs.control_for(0)
    assert ctrl is not None and ctrl.dns is not None and ctrl.dns.addrs == ("1.2.3.4",)
    assert ctrl.ip_asn == {"1.2.3.4": 13335}
    hop = obs.control_for(1)
    assert hop is not None and hop.hostname == "other.example" and hop.http is None
    assert obs.control_for(2) is None


def test_old_shape_infers_depth_and_keeps_legacy_failures() -> None:
    tk = {
        "queries": [{"hostname": "a.example", "engine": "system", "failure": None,
                     "answers": [{"answer_type": "A", "ipv4": "5.6.7.8"}]}],
        "tcp_connect": [{"ip": "5.6.7.8", "port": 80, "status": {"success": False, "failure": None}}],
        "requests": [{"request": {"url": "http://b.example/"}, "response": {"code": 200, "body": {"format": "base64", "data": "aGk="}}},
                     {"request": {"url": "http://a.example/"}, "failure": "x"},
                     {"request": {"url": "http://a.example/"}, "failure": "x"}],
        "http_experiment_failure": "connection_reset",
        "control": {},
    }  # fmt: skip
    obs = flatten(_m(tk, input=["http://a.example/"]))
    assert [h.depth for h in obs.http] == [1, 0, 0]
    assert obs.http[0].body_length == 2
    assert obs.tcp[0].failure is not None and obs.tcp[0].transaction_id is None
    assert obs.extra == {"http_experiment_failure": "connection_reset"}
    assert obs.control_for(0) is None


@pytest.mark.parametrize(
    "bad",
    [None, 1, "s", [], {}, _m(None), _m([]), _m({"queries": {"x": 1}, "requests": [None, 3, {"request": 5}],
     "tcp_connect": [{"ip": "1.1.1.1", "port": "80"}], "control": {"dns": 5, "ip_info": {"1.1.1.1": 7}},
     "x_controls": [None, {"control": []}], "tls_handshakes": [{"failure": 12}]})],
)  # fmt: skip
def test_malformed_becomes_unknown(bad: Any) -> None:
    obs = flatten(bad)
    assert isinstance(obs, Observations)


def test_every_shared_measurement_flattens() -> None:
    if not DATA.is_dir():
        pytest.skip(f"shared data not found at {DATA}")
    for path in sorted(DATA.glob("measurements_*.jsonl")):
        with path.open() as handle:
            for line in handle:
                assert isinstance(flatten(json.loads(line)), Observations)
