from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from reachwatch.report.model import Measurement, parse_cells, parse_events, parse_summary
from reachwatch.report.sample import sample_data
from reachwatch.web import MemorySource, mount

HOSTILE_UID = "20180725T101010Z_webconnectivity_PK_64501_n1_hostile0000001"
PAYLOADS = (
    "<script>window.__pwned=1</script>",
    '<img src=x onerror="window.__pwned=2">',
    "</pre><h1 id=injected>injected</h1><pre>",
    '</textarea></style></title><svg onload="window.__pwned=3"></svg>',
    '<iframe srcdoc="<script>parent.__pwned=4</script>"></iframe>',
    '<meta http-equiv=refresh content="0;url=https://evil.example/">',
    "<link rel=stylesheet href=https://evil.example/x.css><base href=https://evil.example/>",
)
HOSTILE = "".join(PAYLOADS)


def _self_signed(cn: str) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime(2018, 7, 1, tzinfo=dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def hostile_measurement() -> dict[str, Any]:
    binary_body = base64.b64encode(b"\xff\xfe" + HOSTILE.encode()).decode()
    return {
        "measurement_uid": HOSTILE_UID,
        "input": "https://awamiworkersparty.org/" + PAYLOADS[0],
        "probe_cc": "PK",
        "probe_asn": "AS64501",
        "probe_network_name": "Indus Fibre " + PAYLOADS[1],
        "measurement_start_time": "2018-07-25 10:10:10",
        "test_name": "web_connectivity",
        "test_keys": {
            "queries": [
                {"hostname": "awamiworkersparty.org", "query_type": "A", "engine": "udp",
                 "resolver_address": "10.0.0.53:53", "failure": None,
                 "answers": [{"answer_type": "A", "ipv4": "10.10.34.35", "ttl": 60},
                             {"answer_type": "CNAME", "hostname": PAYLOADS[2], "ttl": 60}]},
            ],
            "tcp_connect": [{"ip": "10.10.34.35", "port": 443, "status": {"success": True, "failure": None}}],
            "tls_handshakes": [
                {"address": "10.10.34.35:443", "server_name": "awamiworkersparty.org", "tls_version": "TLSv1.3",
                 "cipher_suite": "TLS_AES_128_GCM_SHA256", "failure": None,
                 "peer_certificates": [{"format": "base64", "data": _self_signed(PAYLOADS[0])},
                                       {"format": "base64", "data": "bm90IGEgY2VydA=="}]},
            ],
            "requests": [
                {"request": {"method": "GET", "url": "http://awamiworkersparty.org/",
                             "headers_list": [["Host", "awamiworkersparty.org"], ["X-Evil", PAYLOADS[3]]]},
                 "response": {"code": 200, "body": HOSTILE, "body_is_truncated": False,
                              "headers_list": [["Content-Type", "text/html"], [PAYLOADS[0], PAYLOADS[1]],
                                               ["Refresh", "0;url=https://evil.example/"]]},
                 "failure": None},
                {"request": {"method": "GET", "url": "http://awamiworkersparty.org/bin", "headers": {}},
                 "response": {"code": 451, "body": {"format": "base64", "data": binary_body}, "headers": {"Server": PAYLOADS[4]}},
                 "failure": "connection_reset"},
            ],
            "control": {"http_request": {"title": PAYLOADS[5], "status_code": 200}, "dns": {"addrs": ["203.0.113.7"]}},
            "blocking": "http-diff", "accessible": False, "x_technique": "http-blockpage", "x_rule": "http.blockpage",
        },
    }  # fmt: skip


@pytest.fixture(scope="session")
def hostile_uid() -> str:
    return HOSTILE_UID


@pytest.fixture(scope="session")
def hostile_body() -> str:
    return HOSTILE


@pytest.fixture(scope="session")
def source() -> MemorySource:
    summary, cells, events = sample_data()
    src = MemorySource(parse_summary(summary), parse_cells(cells), parse_events(events))
    src.add_measurements([Measurement.from_raw(hostile_measurement())])
    return src


@pytest.fixture()
def client(source: MemorySource) -> TestClient:
    app = Starlette(routes=[mount(source, "/dash")])
    return TestClient(app)


@pytest.fixture(scope="session")
def hostile_raw() -> dict[str, Any]:
    """The hostile measurement as a dict (for stores: tests/web/test_web_store.py)."""
    return hostile_measurement()
