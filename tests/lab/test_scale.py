"""2,000 sites come up quickly and one of them answers."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from lab.labtools import LabFactory, client

pytestmark = pytest.mark.lab

N = 2000
BURST = 10_000  # queries in flight at once: 100 parallel probes' lookups many times over


def test_two_thousand_sites(make_lab: LabFactory) -> None:
    rows = "".join(f"https://site{i}.example/,NEWS,News,2020-01-01,x,\n" for i in range(N))
    csv = "url,category_code,category_description,date_added,source,notes\n" + rows
    scenario = 'targets = "big.csv"\n[[isp]]\nname = "Big ISP"\nasn = 64520\ncc = "ZZ"\n' + (
        'block = [{ technique = "tls-sni-reset", host = "site1999.example" }]\n'
    )
    t0 = time.monotonic()
    lab = make_lab(scenario, "rwsc", files={"big.csv": csv})
    assert time.monotonic() - t0 < 10
    ca = f"{lab.out}/ca.pem"
    sites = json.loads((Path(lab.out) / "scenario.json").read_text())["sites"]
    ip, blocked_ip = sites["site1500.example"]["ip"], sites["site1999.example"]["ip"]
    assert ip.startswith("198.18.")  # past the three TEST-NETs
    dns, page, blocked = client(
        lab.vantages[0].ns,
        ["dns", "site1500.example"],
        ["https", ip, "site1500.example", ca],
        ["tls", blocked_ip, "site1999.example", ca],
    )
    assert dns == {"answers": [ip]}
    assert page["status"] == 200 and page["title"] == "site1500.example"
    assert blocked == {"error": "reset"}
    # a burst of lookups from the ISP, sent at once (as a probe measuring many sites in parallel
    # does), is answered whole: at the kernel's default receive buffers the lab's resolvers
    # dropped a few hundred of 2,000, and a clean ISP got "dns" verdicts
    (burst,) = client(lab.vantages[0].ns, ["dns-burst", "site{}.example", N, BURST, 10])
    assert burst == {"sent": BURST, "answered": BURST}
