"""The lab's collector: ``reachwatch serve`` in the control vantage, on its own address.

The lab writes ``DIR/lab.mmdb`` (a MaxMind DB mapping each ISP's /24 to its ASN, network name and
country, and the control vantage's ranges to the control's), so the collector attributes every
measurement from the address it came from, as it does in the field. Probes reach it across the
censoring router (which accepts that traffic before any censoring rule). Readiness is "its port
is listening" (uvicorn binds after the store is open); a collector that does not start fails the
run, with its log.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from reachwatch.lab import addressing as a
from reachwatch.lab import mmdb, netns
from reachwatch.lab.control import start_service
from reachwatch.lab.netns import LabError
from reachwatch.lab.scenario import Scenario
from reachwatch.lab.state import LabState, Process

MMDB = "lab.mmdb"
READY_TIMEOUT = 30.0


def _record(asn: int, name: str, cc: str) -> dict[str, Any]:
    return {
        "autonomous_system_number": asn,
        "autonomous_system_organization": name,
        "country": {"iso_code": cc},
    }


def networks(scenario: Scenario, layout: a.Layout) -> dict[str, dict[str, Any]]:
    """Each ISP's /24, and the control vantage's link and service ranges, to their network."""
    nets = {
        addr.net: _record(isp.asn, isp.name, isp.cc)
        for isp, addr in zip(scenario.isp, layout.isps, strict=True)
    }
    c = scenario.control
    for net in (a.LINK_CONTROL_NET, a.CONTROL_NET):
        nets[net] = _record(c.asn, c.name, c.cc)
    return nets


def write_mmdb(out: Path, scenario: Scenario, layout: a.Layout) -> Path:
    return mmdb.write(out / MMDB, networks(scenario, layout), "reachwatch-lab-ASN-Country")


def _running(state: LabState) -> Process | None:
    for p in state.processes:
        if p.name == "collector" and netns.alive(p.pid) and p.pid in netns.ns_pids(p.ns):
            return p
    return None


def stop_collector(state: LabState) -> None:
    netns.kill([p.pid for p in state.processes if p.name == "collector" and netns.alive(p.pid)])
    state.processes = [p for p in state.processes if p.name != "collector"]
    state.collector_url = state.collector_db = None
    state.save()


def start_collector(state: LabState, db: Path | None = None) -> str:
    """Start the collector (or keep the running one if it writes to the same file); return its URL."""
    out = Path(state.out)
    db = (db or out / "collector.duckdb").resolve()
    if _running(state) is not None and state.collector_db == str(db) and state.collector_url:
        return state.collector_url
    stop_collector(state)
    ns = next(v.ns for v in state.vantages if not v.isp)
    if not (out / MMDB).is_file():
        raise LabError(f"{out / MMDB} is missing: bring the lab down and up again")
    db.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "reachwatch", "serve", "--db", str(db), "--asn-db", str(out / MMDB),
            "--host", a.COLLECTOR, "--port", str(a.COLLECTOR_PORT), "--rate", "0"]  # fmt: skip
    failed = start_service(state, "collector", ns, argv, a.COLLECTOR_PORT, timeout=READY_TIMEOUT)
    if failed is None:
        state.collector_url = f"http://{a.COLLECTOR}:{a.COLLECTOR_PORT}"
        state.collector_db = str(db)
        state.save()
        return state.collector_url
    stop_collector(state)
    tail = failed.read_text(errors="replace")[-2000:] if failed.exists() else ""
    raise LabError(f"the collector did not start in {ns}:\n{tail}")
