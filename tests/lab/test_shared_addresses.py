"""Sites and addresses, end to end: real probe, control helper and packet filtering.

A web server answers only for the sites on the address a client connected to, so a censor's DNS
answer pointing at another site's address is a hijack (a 404, or that server's certificate), not
the real page; and name-based blocking of one site on a shared address leaves its neighbours alone,
while address-based blocking hits all of them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.labtools import LabFactory
from reachwatch.lab.run import Timeouts, measure_all

pytestmark = pytest.mark.lab

SCENARIO = """
[[site]]
host = "decoy.example"
ip = "192.0.2.80"
[[site]]
host = "plain.example"
[[site]]
host = "secure.example"
https = true
[[site]]
host = "a.example"
https = true
ip = "198.51.100.50"
[[site]]
host = "b.example"
https = true
ip = "198.51.100.50"
[[site]]
host = "c.example"
ip = "198.51.100.50"

[[site]]
host = "d.example"
ip = "198.51.100.60"
[[site]]
host = "e.example"
ip = "198.51.100.60"
[[site]]
host = "f.example"
ip = "198.51.100.60"
[[site]]
host = "g.example"
ip = "198.51.100.60"

[[isp]]
name = "Hijack to a site"
asn = 64501
cc = "RU"
block = [
  { technique = "dns-hijack", host = "plain.example", to = "192.0.2.80" },
  { technique = "dns-hijack", host = "secure.example", to = "192.0.2.80" },
  { technique = "tls-sni-reset", host = "a.example" },
]

[[isp]]
name = "Address block"
asn = 64502
cc = "RU"
block = [{ technique = "tcp-reset", host = "b.example" }]

[[isp]]
name = "Proxy on a shared address"
asn = 64503
cc = "RU"
block = [
  { technique = "http-blockpage", host = "d.example" },
  { technique = "http-reset", host = "e.example" },
  { technique = "throttle", host = "f.example", rate = "16kbit" },
]
"""

NONE = (False, True, "none")


@pytest.fixture(scope="module")
def rows(make_lab: LabFactory) -> Iterator[dict[tuple[str, str], tuple[Any, Any, Any]]]:
    state = make_lab(SCENARIO, "rwsa", control=True)
    for run in measure_all(state, Timeouts(dns=1.5, tcp=2.0, tls=2.0, http=3.0)):
        assert run.returncode == 0, run.stderr
    out: dict[tuple[str, str], tuple[Any, Any, Any]] = {}
    for line in (Path(state.out) / "measurements.jsonl").read_text().splitlines():
        m = json.loads(line)
        tk = m["test_keys"]
        out[(m["probe_asn"], m["input"])] = (tk["blocking"], tk["accessible"], tk["x_technique"])
    yield out


@pytest.mark.parametrize("url", ["http://plain.example/", "https://secure.example/"])
def test_hijack_to_another_sites_address_is_a_hijack(rows: Any, url: str) -> None:
    assert rows[("AS64501", url)] == ("dns", False, "dns-hijack")
    assert rows[("AS64496", url)] == NONE
    assert rows[("AS64502", url)] == NONE


def test_the_decoy_site_itself_is_fine(rows: Any) -> None:
    for asn in ("AS64501", "AS64502", "AS64496"):
        assert rows[(asn, "http://decoy.example/")] == NONE


def test_sni_blocking_spares_the_neighbours_on_the_address(rows: Any) -> None:
    assert rows[("AS64501", "https://a.example/")] == ("http-failure", False, "tls-reset")
    assert rows[("AS64501", "https://b.example/")] == NONE
    assert rows[("AS64501", "http://c.example/")] == NONE


@pytest.mark.parametrize("url", ["https://a.example/", "https://b.example/", "http://c.example/"])
def test_address_blocking_hits_every_site_on_the_address(rows: Any, url: str) -> None:
    assert rows[("AS64502", url)] == ("tcp_ip", False, "tcp-reset")
    assert rows[("AS64496", url)] == NONE


def test_the_http_proxy_of_one_host_does_not_lift_its_neighbours_blocks(rows: Any) -> None:
    """d.example's blockpage sends all of the address's port 80 to the router's proxy, which
    relayed e.example's request and f.example's page past the forward path, where their
    reset and throttle live: both were seen as accessible in a 2,000-site run."""
    assert rows[("AS64503", "http://d.example/")] == ("http-diff", False, "http-blockpage")
    assert rows[("AS64503", "http://e.example/")] == ("http-failure", False, "http-reset")
    assert rows[("AS64503", "http://f.example/")] == ("http-failure", False, "throttled")
    assert rows[("AS64503", "http://g.example/")] == NONE  # relayed, untouched
    for host in "defg":
        assert rows[("AS64496", f"http://{host}.example/")] == NONE
