"""`reachwatch aggregate`, `reachwatch report`, `reachwatch analyze`: findings from a store."""

from __future__ import annotations

import csv
import datetime as dt
import io
import sys
from pathlib import Path
from typing import Any

import orjson
import typer

from reachwatch.errors import UserError
from reachwatch.output import write_stdout
from reachwatch.report.tables import CSV_LINE_END
from reachwatch.store.query import domain_filter

DB = typer.Option(None, "--db", help="DuckDB file written by `reachwatch serve`.")
CLICKHOUSE = typer.Option(None, "--clickhouse", help="ClickHouse URL http://HOST:8123/DB.")
SINCE = typer.Option(None, "--since", help="First day (YYYY-MM-DD), inclusive.")
UNTIL = typer.Option(None, "--until", help="Last day (YYYY-MM-DD), inclusive.")
CC = typer.Option(None, "--cc", help="Country code, e.g. PK.")
DOMAIN = typer.Option(None, "--domain", help="Site, e.g. example.org (any case, Unicode, or a URL).")
UNATTRIBUTED = typer.Option(
    False,
    "--include-unattributed",
    help="Also count measurements the collector could not place on a network, under the network "
    "their probe claimed (left out by default: anyone can claim any network).",
)


def location(db: Path | None, clickhouse: str | None) -> str:
    if (db is None) == (clickhouse is None):
        raise UserError("give exactly one of --db FILE.duckdb and --clickhouse URL")
    if clickhouse is not None:
        if not clickhouse.startswith(("http://", "https://")):
            raise UserError("not an http(s) URL", where=clickhouse, fix="use http://HOST:8123/DB")
        return clickhouse
    assert db is not None
    if not db.is_file():
        raise UserError("no such DuckDB file", where=str(db))
    return str(db)


def day(value: str | None, flag: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise UserError(f"{flag} {value!r} is not a date", fix="use YYYY-MM-DD") from None


def _filters(since: str | None, until: str | None, cc: str | None, domain: str | None) -> Any:
    from reachwatch.report.from_store import period_filters

    start, end = day(since, "--since"), day(until, "--until")
    if start and end and end < start:
        raise UserError(f"--until {end} is before --since {start}")
    if cc is not None and not (len(cc) == 2 and cc.isascii() and cc.isalpha()):
        raise UserError(f"--cc {cc!r} is not a two-letter country code")
    host = domain_filter(domain) if domain is not None else None
    if domain is not None and not host:
        raise UserError(f"--domain {domain!r} names no site", fix="give a host name, e.g. example.org")
    return period_filters(start, end, cc=cc.upper() if cc else None, domain=host)


def say_left_out(reader: Any, f: Any, unattributed: bool) -> None:
    """On stderr: how many measurements of the selection the per-network findings left out."""
    from reachwatch.aggregate.sql import unattributed_count
    from reachwatch.report.from_store import INCLUDE_UNATTRIBUTED, left_out

    count = 0 if unattributed else unattributed_count(reader, f)
    if count:
        typer.echo(f"note: {left_out(count)}; {INCLUDE_UNATTRIBUTED}", err=True)


def aggregate(
    db: Path | None = DB,
    clickhouse: str | None = CLICKHOUSE,
    by: str = typer.Option("probe_cc,probe_asn,domain,day", "--by", help="Grouping keys."),
    since: str | None = SINCE,
    until: str | None = UNTIL,
    cc: str | None = CC,
    domain: str | None = DOMAIN,
    fmt: str = typer.Option("json", "--format", help="json (one object per line) or csv."),
    unattributed: bool = UNATTRIBUTED,
) -> None:
    """One record per cell: state, counts, blocked share with its 95% interval, technique, witnesses."""
    from reachwatch.aggregate.sql import network_names, parse_keys, query_cells
    from reachwatch.report.from_store import records
    from reachwatch.store.readers import open_reader

    if fmt not in ("json", "csv"):
        raise UserError(f"--format {fmt!r}", fix="use json or csv")
    keys = parse_keys(by)
    f = _filters(since, until, cc, domain)
    reader = open_reader(location(db, clickhouse))
    try:
        names = network_names(reader, f, unattributed=unattributed) if "probe_asn" in keys else {}
        recs = records(query_cells(reader, keys, f, unattributed=unattributed), names)
        say_left_out(reader, f, unattributed)
    finally:
        reader.close()
    write_records(recs, fmt)


def write_records(recs: list[dict[str, Any]], fmt: str) -> None:
    if fmt == "json":
        write_stdout(b"".join(orjson.dumps(r) + b"\n" for r in recs))
        return
    if not recs:
        return
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(recs[0]), lineterminator=CSV_LINE_END)
    writer.writeheader()
    for r in recs:
        writer.writerow({k: " ".join(v) if isinstance(v, list) else v for k, v in r.items()})
    sys.stdout.write(out.getvalue())


def report(
    out: Path = typer.Option(..., "--out", help="Directory to write the report into."),
    db: Path | None = DB,
    clickhouse: str | None = CLICKHOUSE,
    since: str | None = SINCE,
    until: str | None = UNTIL,
    cc: str | None = CC,
    domain: str | None = DOMAIN,
    events: Path | None = typer.Option(None, "--events", help="CSV date,label[,end_date][,description]."),
    title: str = typer.Option("Website blocking", "--title"),
    pdf: bool = typer.Option(True, "--pdf/--no-pdf", help="Also print a PDF with Chromium."),
    unattributed: bool = UNATTRIBUTED,
) -> None:
    """The published report (HTML, PDF, CSV/JSON) over the store's measurements."""
    from reachwatch.report import load_events
    from reachwatch.report.from_store import report_from_store

    f = _filters(since, until, cc, domain)
    evs = load_events(events) if events is not None else []
    start, end = day(since, "--since"), day(until, "--until")
    period = (start, end) if start and end else None
    where = location(db, clickhouse)
    paths = report_from_store(
        where, f, out, events=evs, title=title, period=period, pdf=pdf, unattributed=unattributed
    )
    for path in paths.all():
        typer.echo(str(path))
    from reachwatch.store.readers import open_reader

    reader = open_reader(where)
    try:
        say_left_out(reader, f, unattributed)
    finally:
        reader.close()


def analyze(
    db: str | None = typer.Option(
        None, "--db", help="DuckDB file (stop the collector first: one writer), or a ClickHouse URL."
    ),
    clickhouse: str | None = CLICKHOUSE,
    fingerprints: Path | None = typer.Option(None, "--fingerprints", help="Fingerprint CSV directory."),
    since: str | None = SINCE,
    workers: int = typer.Option(0, "--workers", help="Processes (0: one per core)."),
) -> None:
    """Re-verdict stale measurements, mark fingerprint matches, refresh the cells they touch."""
    from reachwatch.analyze import analyze_store

    if db is not None and db.startswith(("http://", "https://")):
        db, clickhouse = (None, db) if clickhouse is None else (db, clickhouse)
    if workers < 0:
        raise UserError(f"--workers {workers}", fix="give 0 (one per core) or a positive number")
    where = location(Path(db) if db is not None else None, clickhouse)
    stats = analyze_store(where, fingerprints_dir=fingerprints, since=day(since, "--since"), workers=workers)
    typer.echo(stats.describe())


def register(app: typer.Typer) -> None:
    app.command("aggregate")(aggregate)
    app.command("report")(report)
    app.command("analyze")(analyze)
