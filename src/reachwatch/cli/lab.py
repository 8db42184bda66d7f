"""`reachwatch lab up|run|down`: the work is in reachwatch.lab."""

from __future__ import annotations

from pathlib import Path

import typer

from reachwatch.errors import UserError

OUT = typer.Option(Path("lab-out"), "--out", help="Directory for the lab's state, CA, targets and results.")
PREFIX = typer.Option("rw", "--prefix", help="Namespace prefix (1-5 lowercase letters or digits).")
SCENARIO = typer.Option(..., "--scenario", help="Scenario file (TOML), see docs/lab.md.")

lab_app = typer.Typer(
    name="lab", help="A censorship lab in network namespaces (needs root).", no_args_is_help=True
)


def _fail(exc: Exception) -> None:
    typer.echo(f"reachwatch: lab: {exc}", err=True)
    raise typer.Exit(1)


@lab_app.command()
def up(scenario: Path = SCENARIO, out: Path = OUT, prefix: str = PREFIX) -> None:
    """Build the lab and start its servers."""
    from reachwatch.lab import topology
    from reachwatch.lab.netns import LabError

    try:
        state = topology.up(scenario, out, prefix=prefix)
    except LabError as exc:
        _fail(exc)
        return
    typer.echo(
        f"lab {state.prefix!r} up in {state.up_seconds}s: {len(state.namespaces)} namespaces; state in {state.path}"
    )
    for warning in state.warnings:
        typer.echo(f"warning: {warning}", err=True)


@lab_app.command()
def run(
    scenario: Path = SCENARIO,
    out: Path = OUT,
    prefix: str = PREFIX,
    dns_timeout: float | None = typer.Option(None, "--dns-timeout"),
    tcp_timeout: float | None = typer.Option(None, "--tcp-timeout"),
    tls_timeout: float | None = typer.Option(None, "--tls-timeout"),
    http_timeout: float | None = typer.Option(None, "--http-timeout"),
    parallel: int | None = typer.Option(None, "--parallel"),
    collector: bool = typer.Option(
        False, "--collector", help="Start a collector in the control vantage; every probe submits to it."
    ),
    db: Path | None = typer.Option(
        None,
        "--db",
        help="The collector's DuckDB file (default DIR/collector.duckdb); kept after `lab down`.",
    ),
) -> None:
    """Bring the lab up if needed, then measure from every ISP probe and the control vantage."""
    from reachwatch.lab import collector as lab_collector
    from reachwatch.lab import run as lab_run
    from reachwatch.lab import state as lab_state
    from reachwatch.lab import topology
    from reachwatch.lab.netns import LabError, list_netns

    try:
        state = lab_state.load(out.resolve())
        if state is None or not set(state.namespaces) <= list_netns():
            if state is not None:
                topology.teardown(state)
            state = topology.up(scenario, out, prefix=prefix)
        if collector or db is not None:
            lab_collector.start_collector(state, db)
        elif state.collector_url:
            lab_collector.stop_collector(state)
        timeouts = lab_run.Timeouts(dns_timeout, tcp_timeout, tls_timeout, http_timeout, parallel)
        results = lab_run.measure_all(state, timeouts)
    except LabError as exc:
        _fail(exc)
        return
    typer.echo(lab_run.summary(results, parallel or 0))
    for warning in state.warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(f"all measurements: {Path(state.out) / 'measurements.jsonl'}")
    if state.collector_url:
        typer.echo(f"collector: {state.collector_url} in {state.prefix}-ctl, database {state.collector_db} "
                   "(readable once the collector stops: `reachwatch lab down`)")  # fmt: skip
    if any(r.returncode != 0 for r in results):
        raise typer.Exit(1)


@lab_app.command()
def down(
    scenario: Path | None = typer.Option(None, "--scenario", help="Accepted for symmetry; not needed."),
    out: Path = OUT,
    all_labs: bool = typer.Option(False, "--all", help="Take down every reachwatch lab on this machine."),
) -> None:
    """Kill the lab's processes and delete its namespaces (safe to run twice)."""
    from reachwatch.lab import topology

    del scenario
    gone = topology.down_all() if all_labs else [s for s in [topology.down(out)] if s is not None]
    if not gone and not all_labs and not out.exists():
        raise UserError("no lab state here", where=str(out), fix="pass the --out used with `lab up`")
    typer.echo(f"took down {len(gone)} lab(s)" + "".join(f"\n  {s.prefix}: {s.out}" for s in gone))


def register(app: typer.Typer) -> None:
    app.add_typer(lab_app, name="lab")
