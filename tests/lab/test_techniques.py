"""Every technique, seen by a client inside a censoring ISP, a clean ISP and the control vantage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lab.labtools import LabFactory, client
from reachwatch.lab.addressing import BLOCKPAGE
from reachwatch.lab.servers.web import HANDSHAKE_TIMEOUT
from reachwatch.lab.state import LabState
from reachwatch.probe.config import Timeouts

pytestmark = pytest.mark.lab

# host names longer than the kernel's 128-byte string match (a DNS name may have 253 characters);
# the twin differs from LONG only in its last label
LONG = f"{'a' * 60}.{'b' * 60}.{'c' * 20}.example"
LONG_TWIN = LONG.removesuffix("example") + "examplf"
HOST_128 = f"{'e' * 60}.{'f' * 51}.example"  # "Host: " + 120 + CRLF: a 128-byte pattern ending in hex

SCENARIO = (
    """
[[site]]
host = "hijack.example"
[[site]]
host = "hijackto.example"
[[site]]
host = "nx.example"
[[site]]
host = "dnsdrop.example"
[[site]]
host = "bogon.example"
[[site]]
host = "synto.example"
[[site]]
host = "rst.example"
[[site]]
host = "snirst.example"
https = true
ip = "198.51.100.77"
[[site]]
host = "samehost.example"
https = true
ip = "198.51.100.77"
[[site]]
host = "snito.example"
https = true
[[site]]
host = "bp.example"
ip = "198.51.100.88"
[[site]]
host = "bpneighbour.example"
ip = "198.51.100.88"
[[site]]
host = "httprst.example"
[[site]]
host = "slow.example"
[[site]]
host = "rstbp.example"
[[site]]
host = "@LONG@"
https = true
ip = "198.51.100.99"
[[site]]
host = "@TWIN@"
https = true
ip = "198.51.100.99"
[[site]]
host = "h@LONG@"
[[site]]
host = "@H128@"

[[isp]]
name = "Censor ISP"
asn = 64501
cc = "PK"
block = [
  { technique = "dns-hijack", host = "hijack.example" },
  { technique = "dns-hijack", host = "hijackto.example", to = "192.0.2.99" },
  { technique = "dns-nxdomain", host = "nx.example" },
  { technique = "dns-timeout", host = "dnsdrop.example" },
  { technique = "dns-bogon", host = "bogon.example" },
  { technique = "tcp-timeout", host = "synto.example" },
  { technique = "tcp-reset", host = "rst.example" },
  { technique = "tls-sni-reset", host = "snirst.example" },
  { technique = "tls-sni-timeout", host = "snito.example" },
  { technique = "http-blockpage", host = "bp.example" },
  { technique = "http-reset", host = "httprst.example" },
  { technique = "throttle", host = "slow.example", rate = "24kbit" },
  { technique = "tcp-reset", host = "rstbp.example" },
  { technique = "http-blockpage", host = "rstbp.example" },
  { technique = "tls-sni-reset", host = "@LONG@" },
  { technique = "http-reset", host = "h@LONG@" },
  { technique = "http-reset", host = "@H128@" },
]

[[isp]]
name = "Clean ISP"
asn = 64502
cc = "PK"
""".replace("@LONG@", LONG)
    .replace("@TWIN@", LONG_TWIN)
    .replace("@H128@", HOST_128)
)


@pytest.fixture(scope="module")
def lab(make_lab: LabFactory) -> LabState:
    return make_lab(SCENARIO, "rwtq")


def _sites(lab: LabState) -> dict[str, Any]:
    return json.loads((Path(lab.out) / "scenario.json").read_text())["sites"]


def _ca(lab: LabState) -> str:
    return str(Path(lab.out) / "ca.pem")


def _real(lab: LabState, ns: str, host: str) -> None:
    """``ns`` resolves ``host`` to its real address and fetches the real page."""
    site = _sites(lab)[host]
    fetch = ["https", site["ip"], host, _ca(lab)] if site.get("https") else ["http", site["ip"], host]
    dns, page = client(ns, ["dns", host], fetch)
    assert dns == {"answers": [site["ip"]]}
    assert page.get("status") == 200 and page["title"] == host, page


def _vantages(lab: LabState) -> tuple[str, str, str]:
    censor, clean, control = (v.ns for v in lab.vantages)
    return censor, clean, control


# technique -> (host, op for the censored client, what it must see)
CASES: dict[str, tuple[str, list[str], dict[str, Any]]] = {
    "dns-hijack": ("hijack.example", ["dns", "hijack.example"], {"answers": [BLOCKPAGE]}),
    "dns-hijack-to": ("hijackto.example", ["dns", "hijackto.example"], {"answers": ["192.0.2.99"]}),
    "dns-nxdomain": ("nx.example", ["dns", "nx.example"], {"error": "nxdomain"}),
    "dns-timeout": ("dnsdrop.example", ["dns", "dnsdrop.example"], {"error": "timeout"}),
    "dns-bogon": ("bogon.example", ["dns", "bogon.example"], {"answers": ["10.10.34.35"]}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_dns_techniques(lab: LabState, case: str) -> None:
    host, op, expected = CASES[case]
    censor, clean, control = _vantages(lab)
    assert client(censor, op) == [expected]
    for ns in (clean, control):
        _real(lab, ns, host)


def test_hijacked_client_lands_on_the_blockpage(lab: LabState) -> None:
    censor, _, _ = _vantages(lab)
    page, tls = client(
        censor, ["http", BLOCKPAGE, "hijack.example"], ["tls", BLOCKPAGE, "hijack.example", _ca(lab)]
    )
    assert page["status"] == 200 and page["title"] == "Access denied"
    assert tls["error"] == "cert: self-signed certificate in certificate chain"  # the censor CA


def test_tcp_timeout_drops_the_syn(lab: LabState) -> None:
    censor, clean, control = _vantages(lab)
    ip = _sites(lab)["synto.example"]["ip"]
    assert client(censor, ["connect", ip, 80]) == [{"error": "timeout"}]
    _real(lab, clean, "synto.example")
    _real(lab, control, "synto.example")


def test_tcp_reset_refuses_the_connection(lab: LabState) -> None:
    censor, clean, control = _vantages(lab)
    ip = _sites(lab)["rst.example"]["ip"]
    assert client(censor, ["connect", ip, 80]) == [{"error": "refused"}]
    _real(lab, clean, "rst.example")
    _real(lab, control, "rst.example")


def test_an_address_blocked_outright_is_blocked_before_the_http_proxy(lab: LabState) -> None:
    # tcp-reset and http-blockpage for one host: the reset, as on a real path, where the
    # connection never reaches what would read the request (the proxy's redirect came first)
    censor, clean, _ = _vantages(lab)
    ip = _sites(lab)["rstbp.example"]["ip"]
    assert client(censor, ["connect", ip, 80], ["http", ip, "rstbp.example"]) == [
        {"error": "refused"},
        {"error": "refused"},
    ]
    _real(lab, clean, "rstbp.example")


def test_tls_sni_reset_resets_the_handshake_only_for_that_name(lab: LabState) -> None:
    censor, clean, control = _vantages(lab)
    ip, ca = _sites(lab)["snirst.example"]["ip"], _ca(lab)
    assert client(censor, ["tls", ip, "snirst.example", ca]) == [{"error": "reset"}]
    # another name on the same address passes: the censor reads the SNI, not the address
    assert client(censor, ["https", ip, "samehost.example", ca])[0]["title"] == "samehost.example"
    _real(lab, clean, "snirst.example")
    _real(lab, control, "snirst.example")


def test_long_host_names_are_matched_whole(lab: LabState) -> None:
    """A 150-character name: the SNI and Host patterns exceed the kernel's 128-byte string match
    and are matched in pieces (iptables refused the whole ruleset, so the lab did not come up);
    a 120-character one makes a Host pattern of 128 bytes, which iptables refused too."""
    censor, clean, control = _vantages(lab)
    sites, ca = _sites(lab), _ca(lab)
    ip = sites[LONG]["ip"]
    assert client(censor, ["tls", ip, LONG, ca]) == [{"error": "reset"}]
    # the same length and first 149 characters (so the same first piece): not blocked
    assert client(censor, ["https", ip, LONG_TWIN, ca])[0]["title"] == LONG_TWIN
    for host in ("h" + LONG, HOST_128):
        assert client(censor, ["http", sites[host]["ip"], host]) == [{"error": "reset"}]
    for ns in (clean, control):
        for host in (LONG, "h" + LONG, HOST_128):
            _real(lab, ns, host)


def test_a_client_hello_across_two_blocks_is_still_matched(lab: LabState) -> None:
    """A busy probe's ClientHello can straddle two memory pages, which the kernel's string search
    gets as two blocks; Boyer-Moore (``--algo bm``) never finds a pattern across blocks, so 4 of
    3,000 such handshakes passed the SNI filter (one in a random 60-site lab). KMP finds it."""
    censor, _, _ = _vantages(lab)
    ip = _sites(lab)["snirst.example"]["ip"]
    assert client(censor, ["tls-straddled", ip, "snirst.example", _ca(lab), 3000]) == [{"reset": 3000}]


def test_tls_sni_timeout_connects_then_stalls(lab: LabState) -> None:
    censor, clean, control = _vantages(lab)
    ip = _sites(lab)["snito.example"]["ip"]
    assert client(censor, ["connect", ip, 443], ["tls", ip, "snito.example", _ca(lab)]) == [
        {"ok": True},
        {"error": "timeout"},
    ]
    _real(lab, clean, "snito.example")
    _real(lab, control, "snito.example")


def test_a_site_waits_for_a_handshake_longer_than_any_probe_step() -> None:
    # at 10 s, as long as the probe's TLS step, a site closed the connections whose ClientHello a
    # censor dropped a few ms before the probe gave up: eof_error (tls-reset), not tls-timeout
    assert 2 * max(Timeouts().tcp, Timeouts().tls, Timeouts().http) < HANDSHAKE_TIMEOUT


def test_http_blockpage_answers_blocked_host_and_relays_others(lab: LabState) -> None:
    censor, clean, control = _vantages(lab)
    sites = _sites(lab)
    ip = sites["bp.example"]["ip"]
    blocked, other, elsewhere = client(censor, ["http", ip, "bp.example"], ["http", ip, "bpneighbour.example"],
                                       ["http", ip, "hijack.example"])  # fmt: skip
    assert blocked["status"] == 200 and blocked["title"] == "Access denied"
    # relayed to the real server, which serves the sites on that address, and only those
    assert other["status"] == 200 and other["title"] == "bpneighbour.example"
    assert elsewhere["status"] == 404
    _real(lab, clean, "bp.example")
    _real(lab, control, "bp.example")


def test_http_reset_resets_the_request(lab: LabState) -> None:
    censor, clean, control = _vantages(lab)
    ip = _sites(lab)["httprst.example"]["ip"]
    assert client(censor, ["connect", ip, 80], ["http", ip, "httprst.example"]) == [
        {"ok": True},
        {"error": "reset"},
    ]
    _real(lab, clean, "httprst.example")
    _real(lab, control, "httprst.example")


def test_throttle_slows_the_site_down(lab: LabState) -> None:
    censor, clean, _ = _vantages(lab)
    ip = _sites(lab)["slow.example"]["ip"]
    [slow] = client(censor, ["http", ip, "slow.example"])
    [fast] = client(clean, ["http", ip, "slow.example"])
    assert slow["title"] == fast["title"] == "slow.example" and slow["bytes"] == fast["bytes"] > 5000
    # 24 kbit/s = 3 KB/s: the ~6 KB page takes over a second, against milliseconds when clean
    assert slow["seconds"] > 1.0 > 0.2 > fast["seconds"], (slow, fast)
