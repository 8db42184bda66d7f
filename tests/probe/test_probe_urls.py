"""Odd URLs and odd redirects against real loopback servers: IDN hosts, characters a request
line cannot carry, Location headers that point nowhere measurable."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from reachwatch.probe.config import ProbeConfig, Timeouts
from reachwatch.probe.http import request_headers, request_target
from reachwatch.probe.measure import measure_url
from reachwatch.probe.testing import DnsServer, HttpServer

FAST = Timeouts(dns=1.0, tcp=1.0, tls=1.0, http=1.0)


def test_idn_host_header_and_encoded_target() -> None:
    assert request_headers("http://bücher.example:8080/")[0] == ("Host", "xn--bcher-kva.example:8080")
    assert request_headers("http://Bücher.example/")[0] == ("Host", "xn--bcher-kva.example")
    assert request_headers("http://A.example:81/")[0] == ("Host", "A.example:81")  # ASCII: as written
    assert request_target("http://a.example/a b/ü?x=ä y&z=%41") == "/a%20b/%C3%BC?x=%C3%A4%20y&z=%41"
    assert request_target("http://a.example") == "/"


async def test_idn_url_is_fetched(http_server: HttpServer, dns_server: DnsServer) -> None:
    config = ProbeConfig(timeouts=FAST, resolver=("127.0.0.1", dns_server.port))
    url = f"http://bücher.example:{http_server.port}/ok/a b"
    keys = await measure_url(url, config, None)
    [request] = keys["requests"]
    assert request["failure"] is None and request["response"]["code"] == 200
    assert request["request"]["url"] == url  # the measurement keeps the URL as given
    assert request["request"]["headers"]["Host"] == f"xn--bcher-kva.example:{http_server.port}"


@pytest.mark.parametrize(
    ("location", "failure"),
    [
        ("http://a..b/", "http_invalid_redirect_location_host"),
        ("http://a b/", "http_invalid_redirect_location_host"),
        ("http://[::1/", "http_unexpected_redirect_url"),
        ("http://a.example:99999/", "http_unexpected_redirect_url"),
        ("ftp://a.example/", "http_unexpected_redirect_url"),
        ("https:///nohost", "http_invalid_redirect_location_host"),
    ],
)
async def test_unmeasurable_redirects_end_the_chain_with_a_failure(
    http_server: HttpServer, location: str, failure: str, capfd: pytest.CaptureFixture[str]
) -> None:
    keys = await measure_url(
        f"{http_server.base}/to/{quote(location, safe='')}", ProbeConfig(timeouts=FAST), None
    )
    [request] = keys["requests"]
    assert request["response"]["code"] == 302
    assert request["failure"] == keys["http_experiment_failure"] == failure
    assert "Traceback" not in capfd.readouterr().err
