"""`lab run --collector`: every probe submits across the censor; the collector attributes by address."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from lab.labtools import assert_gone
from reachwatch.lab import netns, state
from reachwatch.store.compression import decompress

pytestmark = pytest.mark.lab

PREFIX = "rwcol"
SCENARIO = """
[[site]]
host = "party.example"
https = true
[[site]]
host = "news.example"
https = true
[[site]]
host = "plain.example"
[[isp]]
name = "Lab ISP A"
asn = 64501
cc = "PK"
probes = 3
block = [
  { technique = "dns-nxdomain", host = "party.example" },
  { technique = "tls-sni-reset", host = "news.example" },
]
[[isp]]
name = "Lab ISP B"
asn = 64502
cc = "IR"
[control]
name = "Lab control"
asn = 64496
cc = "DE"
"""
FAST = ["--dns-timeout", "1", "--tcp-timeout", "2", "--tls-timeout", "2", "--http-timeout", "3"]


def rw(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reachwatch", "lab", *args], capture_output=True, text=True, timeout=180
    )


def test_probes_submit_across_the_censor(tmp_path: Path) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text(SCENARIO)
    out, db = tmp_path / "out", tmp_path / "kept" / "lab.duckdb"
    lab = None
    try:
        result = rw("run", "--scenario", str(scenario), "--out", str(out), "--prefix", PREFIX,
                    "--collector", "--db", str(db), *FAST)  # fmt: skip
        lab = state.load(out)
        assert lab is not None
        if lab.control_url is None:
            pytest.skip(f"no control helper: {lab.warnings}")
        assert result.returncode == 0, result.stderr + result.stdout
        assert result.stdout.count("all sent") == 5, result.stdout  # 3 + 1 probes, and the control
        assert [p.name for p in lab.processes].count("collector") == 1
        probe_ns = [v.ns for v in lab.vantages if v.asn == 64501]
        assert probe_ns == [f"{PREFIX}-isp1", f"{PREFIX}-i1p2", f"{PREFIX}-i1p3"]
        addresses = [v.ip for v in lab.vantages]
        assert {v.ip for v in lab.vantages if v.asn == 64501} == {"100.64.1.2", "100.64.1.10", "100.64.1.11"}
        jsonl = [json.loads(line) for line in (out / "measurements.jsonl").read_text().splitlines()]
        assert len(jsonl) == 3 * 5
    finally:
        down = rw("down", "--out", str(out))
    assert down.returncode == 0, down.stderr
    assert lab is not None
    assert_gone(lab)
    assert not any(ns.startswith(PREFIX + "-") for ns in netns.list_netns())

    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute(
        "SELECT probe_asn, probe_cc, probe_network_name, x_probe_asn_claimed, x_probe_cc_claimed,"
        " attributed, report_id, domain, anomaly, failure, raw FROM measurements"
    ).fetchall()
    con.close()
    assert len(rows) == 3 * 5  # every measurement of every probe
    networks = {(r[0], r[1], r[2]) for r in rows}
    assert networks == {("AS64501", "PK", "Lab ISP A"), ("AS64502", "IR", "Lab ISP B"),
                        ("AS64496", "DE", "Lab control")}  # fmt: skip
    assert {(r[3], r[4], r[5]) for r in rows} == {("AS0", "ZZ", True)}  # what the probes claimed
    reports = {asn: {r[6] for r in rows if r[0] == asn} for asn in ("AS64501", "AS64502", "AS64496")}
    assert [len(reports[asn]) for asn in reports] == [3, 1, 1]  # one report id per probe
    assert all(sum(r[6] == rid for r in rows) == 3 for rid in reports["AS64501"])
    hijacked = [r for r in rows if r[0] == "AS64501" and r[7] == "party.example"]
    assert len(hijacked) == 3 and all(r[8] for r in hijacked)  # DNS blocking, seen by every probe
    reset = [r for r in rows if r[0] == "AS64501" and r[7] == "news.example"]
    assert len(reset) == 3 and all(r[8] or r[9] for r in reset)  # anomaly, or at least not "ok"
    assert not any(r[8] or r[9] for r in rows if r[0] == "AS64502")

    raw = b"\n".join(decompress(r[10]) for r in rows)
    # the database, any WAL beside it and the journal's segments
    files = [p.read_bytes() for p in sorted(db.parent.rglob("*")) if p.is_file()]
    log = (out / "logs" / "collector.log").read_bytes()
    for address in addresses:
        for blob in (raw, log, *files):
            assert address.encode() not in blob, f"{address} was stored or logged"
