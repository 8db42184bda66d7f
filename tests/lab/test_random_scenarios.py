"""Random scenarios, end to end: every verdict of a seeded random lab against tests/lab/oracle.py.

The generator mixes http and https sites, site conditions, redirect chains (to https, relative,
across blocked hosts, loops), shared addresses (in and out of the lab's pools), IDN and long host
names (past a certificate's 64-character common name and the 128-byte string match), and censoring
ISPs (some with two probes) with random techniques (up to three on one host, some on hosts that
also have a condition), plus a clean ISP and the control vantage. Every row the oracle has an
expectation for must match it; the CI seeds (16, 34, 94 at 30 sites, ~20 s on 2 cores) are the
three whose expectations cover the most techniques and open cases.

Hunting: ``RW_FUZZ_SEEDS=1,2,3 RW_FUZZ_SITES=60 pytest -m lab tests/lab/test_random_scenarios.py``
(as root) runs other seeds and sizes, ``RW_FUZZ_TIMEOUTS=default`` with the probe's own timeouts.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import pytest

from lab.labtools import LabFactory
from lab.oracle import Oracle
from reachwatch.lab import topology
from reachwatch.lab.run import Timeouts, measure_all
from reachwatch.lab.scenario import load_scenario
from reachwatch.probe.config import Timeouts as ProbeTimeouts

pytestmark = pytest.mark.lab

# RW_FUZZ_TIMEOUTS=default: the probe's own timeouts (as `lab run` without flags; slower)
TIMEOUTS = (
    Timeouts()
    if os.environ.get("RW_FUZZ_TIMEOUTS") == "default"
    else Timeouts(dns=1.5, tcp=2.0, tls=2.0, http=3.0)
)
SEEDS = [int(s) for s in os.environ.get("RW_FUZZ_SEEDS", "16,34,94").split(",") if s.strip()]
SITES = int(os.environ.get("RW_FUZZ_SITES", "30"))

STATUSES = [200, 203, 204, 301, 302, 304, 307, 403, 404, 410, 451, 500, 502, 503]
SLOW = ["4kbit", "8kbit", "16kbit", "32kbit"]  # seen at an HTTP timeout of 3 s
MID = ["256kbit", "1mbit"]  # about the limit (the oracle decides which it can tell)
FAST = ["50mbit", "100mbit"]  # a 512 KiB read arrives in the policer's burst
UNUSED = "198.18.7.7"  # a pool address no site stands on (routed, nothing listens)
BOGONS = [None, "127.0.0.1", "10.1.2.3"]
TECHNIQUES = ["dns-hijack", "dns-nxdomain", "dns-timeout", "dns-bogon", "tcp-timeout", "tcp-reset",
              "tls-sni-reset", "tls-sni-timeout", "http-blockpage", "http-reset", "throttle"]  # fmt: skip


def _q(value: str) -> str:
    return json.dumps(value)


def _long_host(rnd: random.Random, first: str) -> str:
    """A host name of 65 to 253 characters (a certificate's common name has 64, a string match
    128 bytes), in labels of up to 63."""
    size = rnd.randint(65, 253)
    labels = [first]
    while len(".".join(labels)) + len(".example") < size:
        room = size - len(".".join(labels)) - len(".example") - 1
        labels.append("".join(rnd.choice("abcdefghij") for _ in range(max(1, min(63, room)))))
    return ".".join([*labels, "example"])[-253:].lstrip(".-")


def generate(seed: int, n_sites: int) -> str:
    """A scenario of ``n_sites`` sites and 2-4 censoring ISPs plus a clean one, as TOML."""
    rnd = random.Random(seed)
    hosts: list[str] = []
    for i in range(n_sites):
        # some names contain others (a.example / xa.example, a.example.org): string matches must not spill
        if hosts and rnd.random() < 0.15:
            base = rnd.choice(hosts)
            hosts.append(rnd.choice([f"x{base}", f"{base.removesuffix('.example')}.example.org"]))
        elif rnd.random() < 0.04:
            hosts.append(f"bücher{i}-{seed}.example")  # an IDN: xn-- in URLs
        elif rnd.random() < 0.04:
            hosts.append(_long_host(rnd, f"l{i}-{seed}"))
        else:
            hosts.append(f"s{i}-{seed}.example")
    hosts = list(dict.fromkeys(hosts))
    ascii_ = {h: h.encode("idna").decode() for h in hosts}
    # shared addresses: a few groups, two outside the lab's pools (one private, one public)
    groups = ["192.0.2.201", "192.0.2.202", "198.51.100.203", "172.31.9.9", "93.184.216.34"]
    ips: dict[str, str] = {}
    for host in hosts:
        if rnd.random() < 0.35:
            ips[host] = rnd.choice(groups)
    https = {host: rnd.random() < 0.5 for host in hosts}
    sites: list[str] = []
    for i, host in enumerate(hosts):
        lines = ["[[site]]", f"host = {_q(host)}", f"https = {str(https[host]).lower()}"]
        if host in ips:
            lines.append(f"ip = {_q(ips[host])}")
        r = rnd.random()
        later = hosts[i + 1 :]
        if r < 0.05 and (host not in ips or rnd.random() < 0.3):  # down takes the whole address
            lines.append("down = true")
        elif r < 0.13:
            lines.append("nxdomain = true")
        elif r < 0.23:
            lines.append(f"cert = {_q(rnd.choice(['expired', 'wrong-host', 'untrusted']))}")
        elif r < 0.33:
            lines.append(f"status = {rnd.choice(STATUSES)}")
        elif r < 0.55 and later:  # forward only: chains end
            target = ascii_[rnd.choice(later)]
            scheme = rnd.choice(["http", "https"])
            form = rnd.random()
            if form < 0.05:
                lines.append('redirect_to = "/again"')  # a loop: ten redirects, then a failure
            elif form < 0.2:
                lines.append(f"redirect_to = {_q(f'//{target}/')}")
            elif form < 0.3:  # the default port spelled out, a path and query, a host in capitals
                port = ":80" if scheme == "http" else ":443"
                odd = rnd.choice([f"{target}{port}/", f"{target}/a/b?c=d", f"{target.upper()}/"])
                lines.append(f"redirect_to = {_q(f'{scheme}://{odd}')}")
            else:
                lines.append(f"redirect_to = {_q(f'{scheme}://{target}/')}")
            if rnd.random() < 0.2:
                lines.append(f"status = {rnd.choice(STATUSES)}")  # redirect_to wins
        sites.append("\n".join(lines))
    all_ips = sorted({ip for ip in ips.values()})
    isps: list[str] = []
    n_isps = rnd.randint(2, 4)
    for k in range(n_isps):
        blocks: list[str] = []
        for host in rnd.sample(hosts, k=max(1, len(hosts) * rnd.randint(20, 45) // 100)):
            layers: set[str] = set()
            r = rnd.random()
            for _ in range(1 if r < 0.55 else 2 if r < 0.85 else 3):
                technique = rnd.choice(TECHNIQUES)
                layer = technique.split("-")[0]
                if layer in layers:
                    continue
                layers.add(layer)
                extra = ""
                if technique == "dns-hijack" and rnd.random() < 0.4:
                    extra = f", to = {_q(rnd.choice([*all_ips, UNUSED]))}"
                elif technique == "dns-bogon":
                    to = rnd.choice(BOGONS)
                    extra = f", to = {_q(to)}" if to else ""
                elif technique == "throttle":
                    r = rnd.random()
                    extra = f", rate = {_q(rnd.choice(SLOW if r < 0.7 else MID if r < 0.8 else FAST))}"
                name = host.upper() if rnd.random() < 0.05 else host  # folded to lower case
                blocks.append(f"  {{ technique = {_q(technique)}, host = {_q(name)}{extra} }},")
        isps.append(
            f'[[isp]]\nname = "Censor {k + 1}"\nasn = {64501 + k}\ncc = "PK"\n'
            + ("probes = 2\n" if rnd.random() < 0.15 else "")  # two subscribers, the same verdicts
            + "block = [\n"
            + "\n".join(blocks)
            + "\n]"
        )
    isps.append('[[isp]]\nname = "Clean"\nasn = 64599\ncc = "PK"')
    return "\n\n".join(sites + isps) + "\n"


def evidence(m: dict[str, Any]) -> str:
    """The measurement's key facts: rule, DNS answers or failures, connects, handshakes, requests."""
    tk = m["test_keys"]
    dns = sorted(
        {
            f"{q.get('hostname')}:{q.get('failure') or ','.join(a.get('ipv4', '') for a in q.get('answers') or [])}"
            for q in tk.get("queries") or []
            if q.get("query_type") == "A"
        }
    )
    tcp = [
        f"{c.get('ip')}:{c.get('port')}={(c.get('status') or {}).get('failure') or 'ok'}"
        for c in tk.get("tcp_connect") or []
    ]
    tls = [f"{h.get('server_name')}={h.get('failure') or 'ok'}" for h in tk.get("tls_handshakes") or []]
    reqs = [
        f"{(r.get('request') or {}).get('url')}={r.get('failure') or (r.get('response') or {}).get('code')}"
        for r in tk.get("requests") or []
    ]
    ctl = (tk.get("control") or {}).get("http_request") or {}
    return (
        f"rule={tk.get('x_rule')} dns={dns} tcp={tcp} tls={tls} requests={reqs} "
        f"control_http={ctl.get('failure') or ctl.get('status_code')}"
    )


def check(scenario_path: Path, out: Path) -> tuple[list[str], int, int]:
    """Mismatches (one line each), rows checked, rows left open by the oracle."""
    oracle = Oracle(load_scenario(scenario_path), http_timeout=TIMEOUTS.http or ProbeTimeouts().http)
    got: dict[tuple[str, str], list[dict[str, Any]]] = {}  # several probes of an ISP: one each
    for line in (out / "measurements.jsonl").read_text().splitlines():
        m = json.loads(line)
        got.setdefault((m["probe_asn"], m["input"]), []).append(m)
    mismatches, checked, open_ = [], 0, 0
    for key, expect in sorted(oracle.rows().items()):
        if key not in got:
            mismatches.append(f"{key}: no measurement")
            continue
        if expect.allowed is None:
            open_ += 1
            continue
        for m in got[key]:
            checked += 1
            tk = m["test_keys"]
            verdict = (tk["blocking"], tk["accessible"], tk["x_technique"])
            if verdict not in expect.allowed:
                mismatches.append(
                    f"{key[0]} {key[1]}: got {verdict}, expected {sorted(expect.allowed, key=str)} "
                    f"({expect.why}); {evidence(m)}"
                )
    return mismatches, checked, open_


@pytest.mark.parametrize("seed", SEEDS)
def test_random_scenario_matches_the_oracle(make_lab: LabFactory, seed: int) -> None:
    text = generate(seed, SITES)
    state = make_lab(text, f"rz{seed % 1000}", control=True)
    try:
        for run in measure_all(state, TIMEOUTS):
            assert run.returncode == 0, run.stderr
        mismatches, checked, open_ = check(Path(state.out).parent / "scenario.toml", Path(state.out))
    finally:
        topology.teardown(state)  # one lab at a time (make_lab's teardown again at the end is a no-op)
    print(f"\nseed {seed}: {checked} rows checked, {open_} left open, {len(mismatches)} mismatches")
    assert not mismatches, f"seed {seed}:\n" + "\n".join(mismatches)
