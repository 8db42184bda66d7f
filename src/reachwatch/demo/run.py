"""``reachwatch demo``: build the Pakistan-2018 lab, measure it from every ISP, print the evidence.

Everything the demo starts is torn down before it returns, whatever happens.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from rich.console import Console

from reachwatch.lab import state as lab_state
from reachwatch.lab import topology
from reachwatch.lab.run import Timeouts, measure_all, summary
from reachwatch.report.isp_table import isp_rows, read_measurements, render

SCENARIO = "pakistan-2018.toml"
PREFIX = "rwd"


@dataclass(frozen=True)
class DemoResult:
    out: Path
    measurements: Path
    seconds: float


def scenario_path(out: Path) -> Path:
    """The packaged scenario, copied next to the results so a user can edit and re-run it."""
    text = resources.files("reachwatch.demo").joinpath(SCENARIO).read_text(encoding="utf-8")
    path = out / SCENARIO
    path.write_text(text, encoding="utf-8")
    return path


def run(out: Path, console: Console | None = None, timeouts: Timeouts | None = None) -> DemoResult:
    console = console or Console()
    out.mkdir(parents=True, exist_ok=True)
    out = out.resolve()
    t0 = time.monotonic()
    scenario = scenario_path(out)
    lab_dir = out / "lab"
    stale = lab_state.load(lab_dir)
    if stale is not None:
        topology.teardown(stale)
    console.print(f"[bold]Building the lab[/bold] from {scenario} ...")
    state = topology.up(scenario, lab_dir, prefix=PREFIX)
    try:
        console.print(
            f"lab up in {state.up_seconds}s; measuring every site from every ISP and the control vantage ..."
        )
        results = measure_all(state, timeouts or Timeouts(dns=2, tcp=3, tls=3, http=5))
        console.print(summary(results))
    finally:
        topology.teardown(state)
    measurements = lab_dir / "measurements.jsonl"
    rows = [r for r in isp_rows(read_measurements(measurements)) if r.asn != "AS64496"]
    render(
        rows,
        console,
        title="Per-ISP evidence: who blocks what, and how (lab modelled on Pakistan, June 2018)",
    )
    seconds = time.monotonic() - t0
    console.print(f"\nmeasurements (OONI format): {measurements}")
    console.print(f"recompute the verdicts:     reachwatch verdict {measurements} --format table")
    console.print(f"demo finished in {seconds:.1f}s; the lab has been taken down.")
    return DemoResult(out=out, measurements=measurements, seconds=seconds)
