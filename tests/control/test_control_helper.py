"""The control helper app: refuses bogons unless --lab, measures in the lab, rejects bad requests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from reachwatch.control.safety import MAX_REQUEST_BYTES, Safety, is_bogon
from reachwatch.control.server import make_app
from reachwatch.probe.testing import HttpServer


async def post(app: Any, body: Any = None, *, content: bytes | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://control") as client:
        if content is not None:
            return await client.post("/", content=content)
        return await client.post("/", json=body)


def th(url: str, endpoints: list[str]) -> dict[str, Any]:
    return {
        "http_request": url,
        "http_request_headers": {},
        "tcp_connect": endpoints,
        "x_quic_enabled": False,
    }


@pytest.mark.parametrize("ip", ["127.0.0.1", "10.1.2.3", "192.168.1.1", "169.254.1.1", "::1", "fe80::1",
                                "100.64.0.1", "192.0.2.1", "224.0.0.1", "0.0.0.0", "::ffff:127.0.0.1"])  # fmt: skip
def test_bogons(ip: str) -> None:
    assert is_bogon(ip)
    assert Safety(lab=False).refuse(ip) == "bogon_address_refused"
    assert Safety(lab=True).refuse(ip) is None


def test_public_addresses_are_allowed() -> None:
    assert not is_bogon("8.8.8.8")
    assert not is_bogon("2001:4860:4860::8888")


async def test_refuses_loopback_without_lab(https_server: HttpServer, ca_file: Path) -> None:
    app = make_app(lab=False, ca_file=ca_file)
    response = await post(app, th(f"{https_server.base}/ok", [f"127.0.0.1:{https_server.port}"]))
    assert response.status_code == 200
    control = response.json()
    key = f"127.0.0.1:{https_server.port}"
    assert control["tcp_connect"][key] == {"status": False, "failure": "bogon_address_refused"}
    assert control["tls_handshake"] == {}
    assert control["http_request"]["failure"] == "bogon_address_refused"


async def test_measures_in_the_lab(https_server: HttpServer, ca_file: Path) -> None:
    app = make_app(lab=True, ca_file=ca_file)
    response = await post(app, th(f"{https_server.named}/redirect", [f"127.0.0.1:{https_server.port}"]))
    assert response.status_code == 200
    control = response.json()
    key = f"127.0.0.1:{https_server.port}"
    assert control["dns"] == {"failure": None, "addrs": ["127.0.0.1"]}
    assert control["tcp_connect"][key] == {"status": True, "failure": None}
    assert control["tls_handshake"][key] == {"server_name": "localhost", "status": True, "failure": None}
    http = control["http_request"]
    assert (http["status_code"], http["failure"], http["title"]) == (200, None, "Test page")
    assert http["body_length"] > 0
    assert http["discovered_h3_endpoint"] == ""
    assert control["ip_info"]["127.0.0.1"] == {"asn": 0, "flags": 1 | 2 | 4}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not json", "not JSON"),
        (b"[]", "JSON object"),
        (b'{"tcp_connect": []}', "http_request"),
        (b'{"http_request": "ftp://x/"}', "http:// or https:// URL"),
        (b'{"http_request": "http://[::1/"}', "not a valid URL"),  # was a 500
        (b'{"http_request": "http://a..b/"}', "empty label"),
        (b'{"http_request": "http://a b/"}', "not a valid domain name"),
        (b'{"http_request": "http://x/", "tcp_connect": ["nope"]}', "tcp_connect"),
        (b'{"http_request": "http://x/", "tcp_connect": ["1.2.3.4:99999"]}', "port"),
        (b'{"http_request": "http://x/", "tcp_connect": "1.2.3.4:80"}', "list"),
    ],
)
async def test_malformed_requests_are_400(content: bytes, message: str) -> None:
    response = await post(make_app(), content=content)
    assert response.status_code == 400
    assert message in response.json()["error"]


async def test_large_requests_are_413() -> None:
    response = await post(make_app(), content=b"x" * (MAX_REQUEST_BYTES + 1))
    assert response.status_code == 413


async def test_too_many_endpoints_are_400() -> None:
    endpoints = [f"8.8.8.{i}:443" for i in range(100)]
    response = await post(make_app(), th("https://example.org/", endpoints))
    assert response.status_code == 400


async def test_an_upper_case_https_scheme_gets_tls(https_server: HttpServer, ca_file: Path) -> None:
    """``HTTPS://`` is https (RFC 3986): the page over TLS, and the handshake in the answer."""
    app = make_app(lab=True, ca_file=ca_file)
    url = "HTTPS" + https_server.named.removeprefix("https") + "/ok"
    response = await post(app, th(url, [f"127.0.0.1:{https_server.port}"]))
    control = response.json()
    key = f"127.0.0.1:{https_server.port}"
    assert control["tls_handshake"][key] == {"server_name": "localhost", "status": True, "failure": None}
    assert (control["http_request"]["status_code"], control["http_request"]["failure"]) == (200, None)


async def test_a_probe_that_asks_is_told_the_address_it_is_seen_from(
    https_server: HttpServer, ca_file: Path
) -> None:
    """The probe scrubs that address from its own measurements: the collector scrubs the address
    a measurement is sent from, which is not the one it was measured from if the volunteer moved
    network before the outbox could send (an outside check, session 17). Told only when asked:
    a probe that keeps the helper's answer whole (OONI's keeps it in test_keys) keeps no address."""
    app = make_app(lab=True, ca_file=ca_file)
    request = th(f"{https_server.named}/", [f"127.0.0.1:{https_server.port}"])
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://control") as client:
        asked = (await client.post("/", json={**request, "x_probe_address": True})).json()
        unasked = (await client.post("/", json=request)).json()
        not_true = (await client.post("/", json={**request, "x_probe_address": "yes"})).json()
    assert asked["x_probe_address"] == "203.0.113.9"
    assert "x_probe_address" not in unasked and "x_probe_address" not in not_true
