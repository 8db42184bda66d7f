"""Site conditions that are not censorship look the same from every vantage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.labtools import LabFactory, client
from reachwatch.lab.state import LabState

pytestmark = pytest.mark.lab

SCENARIO = """
[[site]]
host = "down.example"
down = true
[[site]]
host = "gone.example"
nxdomain = true
[[site]]
host = "expired.example"
https = true
cert = "expired"
[[site]]
host = "wrong.example"
https = true
cert = "wrong-host"
[[site]]
host = "untrusted.example"
https = true
cert = "untrusted"
[[site]]
host = "busy.example"
status = 503
[[site]]
host = "moved.example"
redirect_to = "https://expired.example/"

[[isp]]
name = "Only ISP"
asn = 64510
cc = "ZZ"
"""


@pytest.fixture(scope="module")
def lab(make_lab: LabFactory) -> LabState:
    return make_lab(SCENARIO, "rwcd")


@pytest.mark.parametrize("vantage", [0, 1], ids=["isp", "control"])
def test_conditions(lab: LabState, vantage: int) -> None:
    sites = json.loads((Path(lab.out) / "scenario.json").read_text())["sites"]
    ca = str(Path(lab.out) / "ca.pem")
    ip = {host: site["ip"] for host, site in sites.items()}
    ns = lab.vantages[vantage].ns
    down, gone, expired, wrong, untrusted, busy, moved = client(
        ns,
        ["connect", ip["down.example"], 80],
        ["dns", "gone.example"],
        ["tls", ip["expired.example"], "expired.example", ca],
        ["tls", ip["wrong.example"], "wrong.example", ca],
        ["tls", ip["untrusted.example"], "untrusted.example", ca],
        ["http", ip["busy.example"], "busy.example"],
        ["http", ip["moved.example"], "moved.example"],
    )
    assert down == {"error": "refused"}
    assert gone == {"error": "nxdomain"}
    assert expired == {"error": "cert: certificate has expired"}
    assert wrong["error"].startswith("cert: Hostname mismatch")
    assert untrusted == {"error": "cert: self-signed certificate in certificate chain"}  # untrusted CA
    assert busy["status"] == 503 and busy["title"] == "busy.example"
    assert moved["status"] == 301 and moved["location"] == "https://expired.example/"
