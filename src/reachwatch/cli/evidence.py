"""`reachwatch fingerprints update` and `reachwatch blockpages`: the work is in reachwatch.fingerprints
and reachwatch.blockpages."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from reachwatch.errors import UserError
from reachwatch.report.tables import CSV_LINE_END

fingerprints_app = typer.Typer(
    name="fingerprints", help="Known blocking fingerprints (OONI's, and your own).", no_args_is_help=True
)
FORMATS = ("table", "json", "csv")


@fingerprints_app.command("update")
def update_cmd(
    directory: Path | None = typer.Option(
        None, "--dir", help="Where to keep the CSVs (default: $XDG_DATA_HOME/reachwatch/fingerprints)."
    ),
) -> None:
    """Download the current CSVs from github.com/ooni/blocking-fingerprints."""
    from reachwatch.fingerprints.update import update

    for result in update(directory):
        typer.echo(f"{result.path}: {result.fingerprints} fingerprints from {result.url}")


def read_jsonl(paths: list[Path]) -> Iterator[dict[str, Any]]:
    """Measurements from JSON-lines files (``-`` is stdin); a bad line names file and line."""
    for path in paths:
        stream = sys.stdin if str(path) == "-" else None
        try:
            f = stream or path.open(encoding="utf-8")
        except OSError as exc:
            raise UserError(f"cannot read: {exc.strerror}", where=str(path)) from exc
        with f:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise UserError(f"not JSON: {exc.msg}", where=f"{path}:{lineno}") from exc
                if not isinstance(obj, dict):
                    raise UserError("not a JSON object", where=f"{path}:{lineno}")
                yield obj


def blockpages_cmd(
    files: list[Path] = typer.Argument(..., help="Measurements, JSON lines (- for stdin)."),
    min_count: int = typer.Option(2, "--min-count", min=1, help="Report clusters seen in >= N measurements."),
    fmt: str = typer.Option("table", "--format", help="table, json or csv (fingerprint CSV rows)."),
    save: Path | None = typer.Option(None, "--save", help="Append proposals to this fingerprint CSV."),
    fingerprints: Path | None = typer.Option(
        None, "--fingerprints", help="Directory of fingerprint CSVs used to label known blockpages."
    ),
    threshold: float = typer.Option(0.6, "--threshold", min=0.05, max=1.0, help="Jaccard similarity."),
) -> None:
    """Cluster unknown blockpages and propose fingerprints for them."""
    from reachwatch.blockpages import collect, propose
    from reachwatch.fingerprints import FingerprintMatcher, append_fingerprints, load_dir
    from reachwatch.fingerprints.load import to_row
    from reachwatch.fingerprints.model import CSV_COLUMNS

    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}", fix=f"use one of {', '.join(FORMATS)}")
    matcher = None
    try:
        matcher = FingerprintMatcher(load_dir(fingerprints))
    except UserError as exc:
        if fingerprints is not None:
            raise
        typer.echo(f"reachwatch: warning: known blockpages are not labelled: {exc.render()}", err=True)
    got = collect(read_jsonl(files), matcher, threshold=threshold)
    candidates = propose(got.clusters, got.controls, min_count=min_count)
    if fmt == "json":
        typer.echo(json.dumps([c.as_dict() for c in candidates], ensure_ascii=False, indent=1))
    elif fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=CSV_COLUMNS, lineterminator=CSV_LINE_END)
        writer.writeheader()
        writer.writerows(to_row(c.to_fingerprint()) for c in candidates if c.pattern is not None)
    else:
        typer.echo(
            f"{got.n_measurements} measurements, {got.n_blocked} blocked, {got.n_unknown_verdict} "
            f"without verdict; known: {dict(got.labelled.most_common(5)) or 'none'}"
        )
        for c in candidates:
            nets = ", ".join(f"{a}/{cc}:{n}" for a, cc, n in c.networks)
            typer.echo(f"\n{c.name}  [{c.scope}]  {c.n_measurements} measurements, {c.n_inputs} inputs")
            typer.echo(f"  pattern:  {c.pattern!r}" if c.pattern else "  pattern:  (none found)")
            typer.echo(f"  networks: {nets}\n  example:  {c.example_uid} {c.example_input}")
            typer.echo(f"  excerpt:  {c.excerpt[:100]}")
    if save is not None:
        n = append_fingerprints(save, [c.to_fingerprint() for c in candidates if c.pattern is not None])
        typer.echo(f"{n} fingerprint(s) appended to {save}", err=True)


def register(app: typer.Typer) -> None:
    app.add_typer(fingerprints_app)
    app.command("blockpages")(blockpages_cmd)
