"""`reachwatch lab up|run|down` as a user runs them: files, state, refusals, idempotent teardown."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lab.labtools import assert_gone
from reachwatch.lab import netns, state

pytestmark = pytest.mark.lab

SCENARIO = """
[[site]]
host = "party.example"
https = true
[[site]]
host = "plain.example"
[[isp]]
name = "Lab ISP A"
asn = 64501
cc = "PK"
block = [{ technique = "dns-nxdomain", host = "party.example" }]
[[isp]]
name = "Lab ISP B"
asn = 64502
cc = "PK"
"""


def rw(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reachwatch", "lab", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO)
    return path


def test_up_then_down_twice(scenario: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["--scenario", str(scenario), "--out", str(out)]
    up = rw("up", *args, "--prefix", "rwcli")
    try:
        assert up.returncode == 0, up.stderr
        lab = state.load(out)
        assert lab is not None
        assert set(lab.namespaces) <= netns.list_netns()
        assert all(netns.alive(p.pid) for p in lab.processes)
        assert (out / "ca.pem").read_text().startswith("-----BEGIN CERTIFICATE-----")
        assert (out / "targets.csv").read_text().splitlines()[1:] == [
            "https://party.example/,MISC,Miscellaneous,,reachwatch-lab,",
            "http://plain.example/,MISC,Miscellaneous,,reachwatch-lab,",
        ]
        resolved = json.loads((out / "scenario.json").read_text())
        assert resolved["sites"]["party.example"]["ip"] == "203.0.113.1"
        again = rw("up", *args, "--prefix", "rwcli")
        assert again.returncode == 2 and "already up" in again.stderr
    finally:
        first = rw("down", "--out", str(out))
    assert first.returncode == 0 and "took down 1 lab" in first.stdout
    assert_gone(lab)
    second = rw("down", "--out", str(out))
    assert second.returncode == 0 and "took down 0 lab" in second.stdout


def test_bad_scenario_builds_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(SCENARIO.replace("dns-nxdomain", "dns-nope"))
    result = rw("up", "--scenario", str(path), "--out", str(tmp_path / "out"), "--prefix", "rwbad")
    assert result.returncode == 2
    assert f"{path}: isp[0] (Lab ISP A).block[0]" in result.stderr and "dns-nope" in result.stderr
    assert not any(ns.startswith("rwbad-") for ns in netns.list_netns())
    assert not (tmp_path / "out" / "lab.json").exists()


def test_run_measures_from_every_vantage(scenario: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    timeouts = ["--dns-timeout", "1", "--tcp-timeout", "2", "--tls-timeout", "2", "--http-timeout", "3"]
    try:
        result = rw("run", "--scenario", str(scenario), "--out", str(out), "--prefix", "rwrun", *timeouts)
        lab = state.load(out)
        assert lab is not None
        if lab.control_url is None:
            pytest.skip(f"no control helper yet: {lab.warnings}")
        assert result.returncode == 0, result.stderr + result.stdout
        lines = [json.loads(line) for line in (out / "measurements.jsonl").read_text().splitlines()]
        assert len(lines) == 2 * 3  # two sites, three vantages (two ISPs and control)
        assert {m["probe_asn"] for m in lines} == {"AS64501", "AS64502", "AS64496"}
        [censored] = [
            m for m in lines if m["probe_asn"] == "AS64501" and m["input"] == "https://party.example/"
        ]
        assert {q["failure"] for q in censored["test_keys"]["queries"]} == {"dns_nxdomain_error"}
    finally:
        rw("down", "--out", str(out))
    assert_gone(lab)
