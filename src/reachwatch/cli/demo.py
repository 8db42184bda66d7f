"""`reachwatch demo`: the main job (see reachwatch.demo.run)."""

from __future__ import annotations

from pathlib import Path

import typer


def demo(out: Path = typer.Option(Path("demo-out"), "--out", help="Where the results go.")) -> None:
    """Build the Pakistan-2018 lab, measure it from every ISP, print the per-ISP evidence table."""
    from reachwatch.demo.run import run
    from reachwatch.lab.netns import LabError

    try:
        run(out)
    except LabError as exc:
        typer.echo(f"reachwatch: demo: {exc}", err=True)
        raise typer.Exit(1) from None


def register(app: typer.Typer) -> None:
    app.command(name="demo")(demo)
