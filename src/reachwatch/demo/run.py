"""``reachwatch demo``: build the Pakistan-2018 lab, measure it from every ISP, print the evidence.

Everything the demo starts is torn down before it returns, whatever happens.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from rich.console import Console

from reachwatch.analyze import analyze_file
from reachwatch.lab import state as lab_state
from reachwatch.lab import topology
from reachwatch.lab.collector import start_collector
from reachwatch.lab.run import Timeouts, measure_all, summary
from reachwatch.report.from_store import isp_cells, report_from_store
from reachwatch.report.isp_table import render_cells
from reachwatch.store.query import Filters

SCENARIO = "pakistan-2018.toml"
PREFIX = "rwd"
TABLE_TITLE = "Per-ISP evidence: who blocks what, and how (lab modelled on Pakistan, June 2018)"
CONTROL_ASN = 64496  # the lab's control vantage (scenario default)
COUNTRY = "PK"  # the report is about the country measured; the control vantage stands outside it
TITLE = "A political party's website blocked by most, but not all, ISPs (lab, modelled on Pakistan 2018)"


@dataclass(frozen=True)
class DemoResult:
    out: Path
    measurements: Path
    database: Path
    report: Path
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
    database = out / "observatory.duckdb"
    for stale_file in (database, database.with_suffix(".duckdb.wal")):
        stale_file.unlink(missing_ok=True)
    console.print(f"[bold]Building the lab[/bold] from {scenario} ...")
    state = topology.up(scenario, lab_dir, prefix=PREFIX)
    try:
        start_collector(state, database)
        console.print(
            f"lab up in {state.up_seconds}s; every ISP's probes measure every site and submit to the "
            f"collector at {state.collector_url}, across the censor ..."
        )
        results = measure_all(state, timeouts or Timeouts(dns=2, tcp=3, tls=3, http=5))
        console.print(summary(results))
    finally:
        topology.teardown(state)  # stops the collector, which releases the database
    measurements = lab_dir / "measurements.jsonl"
    console.print(f"\n[bold]Analysing[/bold] the collector's database {database} ...")
    console.print(analyze_file(str(database)).describe())
    cells = [c for c in isp_cells(str(database)) if c.get("probe_asn") != f"AS{CONTROL_ASN}"]
    render_cells(cells, console, title=TABLE_TITLE)
    report = report_from_store(str(database), Filters(probe_cc=COUNTRY), out / "report", title=TITLE)
    seconds = time.monotonic() - t0
    where = [
        ("measurements (OONI format)", str(measurements)),
        ("collector database", str(database)),
        ("report (HTML)", str(report.html)),
        ("report (PDF)", str(report.pdf) if report.pdf else "not printed (no Chromium)"),
        ("tables (CSV, JSON)", str(report.html.parent)),
        ("dashboard", f"reachwatch serve --db {database} --port 8000, then http://127.0.0.1:8000/dashboard/"),
        ("recompute verdicts", f"reachwatch verdict {measurements} --format table"),
    ]
    console.print()
    for label, value in where:
        console.print(f"{label + ':':<28} {value}", soft_wrap=True)
    console.print(f"demo finished in {seconds:.1f}s; the lab has been taken down.")
    return DemoResult(
        out=out, measurements=measurements, database=database, report=report.html, seconds=seconds
    )
