"""`reachwatch serve`, `reachwatch submit`, `reachwatch geoip update`: see reachwatch.collector."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import typer

from reachwatch.collector.ratelimit import DEFAULT_BURST, DEFAULT_RATE, LOOPBACK
from reachwatch.errors import UserError

geoip_app = typer.Typer(help="IP-to-network databases for attribution.", no_args_is_help=True)


def serve(
    db: Path | None = typer.Option(
        None, "--db", help="DuckDB file (the default store: reachwatch.duckdb here)."
    ),
    clickhouse: str | None = typer.Option(None, "--clickhouse", help="ClickHouse URL http://HOST:8123/DB."),
    asn_db: Path | None = typer.Option(None, "--asn-db", help="ASN database (mmdb)."),
    country_db: Path | None = typer.Option(None, "--country-db", help="Country database (mmdb)."),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
    max_body: int = typer.Option(
        16 * 1024 * 1024,
        "--max-body",
        help="Largest request body (bytes), a compressed one once decompressed: 413 past it.",
    ),
    rate: float | None = typer.Option(
        None,
        "--rate",
        help=f"Measurements/s allowed per network (default {DEFAULT_RATE:g}; 0: no limit).",
        show_default=False,
    ),
    burst: float | None = typer.Option(
        None,
        "--burst",
        help=f"Token-bucket size per network (default {DEFAULT_BURST:g}).",
        show_default=False,
    ),
    rate_exempt: str | None = typer.Option(
        None,
        "--rate-exempt",
        help="Networks whose submitters are not rate-limited, comma-separated ('' for none). "
        f"Default: loopback ({LOOPBACK}), this host's own probes, tools and load tests; none once "
        "--rate or --burst is given, so that a limit asked for applies to every submitter.",
        show_default=False,
    ),
    # collector.config.MAX_PENDING, written out: that module's imports would slow every command's start
    max_pending: int = typer.Option(60_000, "--max-pending", help="Measurements awaiting commit before 503."),
    admin_token_file: Path | None = typer.Option(
        None, "--admin-token-file", help="Bearer token for admin routes."
    ),
    ingest_workers: int | None = typer.Option(
        None,
        "--ingest-workers",
        help="Processes that parse and prepare big batches (default: one per core, at most 4; 0: none).",
    ),
    journal: bool = typer.Option(
        True,
        "--journal/--no-journal",
        help="Acknowledge small groups once appended to a journal, inserted into the store many at "
        "a time (DuckDB: on by default, in FILE.duckdb.journal/); --no-journal: after each insert.",
    ),
    journal_dir: Path | None = typer.Option(
        None,
        "--journal-dir",
        help="The journal's directory (one per collector): the default beside a DuckDB file; "
        "give one to put a journal in front of ClickHouse.",
    ),
    db_memory: str | None = typer.Option(
        None,
        "--db-memory",
        help="What DuckDB may hold in memory, its cache above all (512MB, 2GB). Default: a quarter of "
        "the machine's memory.",
    ),
    tls_cert: Path | None = typer.Option(
        None, "--tls-cert", help="Serve HTTPS with this certificate chain (PEM); with --tls-key."
    ),
    tls_key: Path | None = typer.Option(None, "--tls-key", help="The certificate's private key (PEM)."),
    trusted_proxy: str | None = typer.Option(
        None,
        "--trusted-proxy",
        help="Behind a reverse proxy: its addresses or networks, comma-separated; the submitter is "
        "then the address its X-Forwarded-For names (used, like a direct one, and forgotten).",
    ),
    test_lists: list[Path] = typer.Option(
        [],
        "--test-lists",
        help="Citizen Lab test lists for OONI probes' check-in: a directory holding global.csv and "
        "<cc>.csv files (citizenlab/test-lists' lists/), or such files; repeatable. None: no URLs.",
        show_default=False,
    ),
    test_helper: str | None = typer.Option(
        None,
        "--test-helper",
        help="The control helper's URL (reachwatch control serve), announced to OONI probes as "
        "their web-connectivity test helper. None: an empty /api/v1/test-helpers.",
    ),
) -> None:
    """Run the collector (OONI collector protocol + native batch API)."""
    from reachwatch.collector.batch import default_workers
    from reachwatch.collector.config import Settings
    from reachwatch.collector.ratelimit import networks_of
    from reachwatch.collector.server import check_tls, trusted_proxies
    from reachwatch.collector.server import serve as run
    from reachwatch.store.duckdb_memory import check_memory_limit

    if not 0 < port < 65536:
        raise UserError(f"--port {port} is not a port number")
    if clickhouse is not None and not clickhouse.startswith(("http://", "https://")):
        raise UserError(
            f"--clickhouse {clickhouse}: not a ClickHouse HTTP URL", fix="give http://HOST:8123/DB"
        )
    for name, value, least in (("--max-body", max_body, 1), ("--max-pending", max_pending, 1)):
        if value < least:
            raise UserError(f"{name} {value}: give at least {least}")
    exempt = (
        rate_exempt
        if rate_exempt is not None
        else ("" if rate is not None or burst is not None else LOOPBACK)
    )
    rate = DEFAULT_RATE if rate is None else rate
    burst = DEFAULT_BURST if burst is None else burst
    if not (math.isfinite(rate) and rate >= 0):
        raise UserError(f"--rate {rate}: give measurements per second per network, 0 for no limit")
    if not (math.isfinite(burst) and burst >= 1):
        raise UserError(f"--burst {burst}: give at least 1 (the most lines a batch may have)")
    try:
        networks_of(exempt)
    except ValueError as exc:
        raise UserError(
            f"--rate-exempt: {exc}", fix="give networks, comma-separated: 127.0.0.0/8,::1"
        ) from None
    if ingest_workers is not None and not 0 <= ingest_workers <= 64:
        raise UserError(f"--ingest-workers {ingest_workers}: give 0 to 64 processes")
    for path in (asn_db, country_db, admin_token_file):
        if path is not None and path.is_dir():
            raise UserError("a directory, not a file", where=str(path))
        if path is not None and not path.is_file():
            raise UserError("no such file", where=str(path))
    if db is not None and clickhouse is not None:  # one would be ignored without a word
        raise UserError("--db and --clickhouse: give one store or the other")
    if journal_dir is not None and not journal:
        raise UserError("--journal-dir and --no-journal: give one or the other")
    check_tls(tls_cert, tls_key)
    if db_memory is not None:
        if clickhouse is not None:
            raise UserError("--db-memory is DuckDB's: ClickHouse sets its own (max_memory_usage)")
        check_memory_limit(db_memory)
    if test_helper is not None:
        check_test_helper(test_helper)
    if test_lists:
        from reachwatch.collector.url_lists import UrlLists

        UrlLists.load(test_lists)  # a bad list is an error now, not at the first check-in
    proxies = trusted_proxies(trusted_proxy) if trusted_proxy is not None else None
    token = admin_token_file.read_text().strip() if admin_token_file else None
    if admin_token_file and not token:
        raise UserError("the admin token file is empty", where=str(admin_token_file))
    settings = Settings(
        store=clickhouse or str(db or Path("reachwatch.duckdb")),
        asn_db=asn_db,
        country_db=country_db,
        max_body=max_body,
        rate=rate,
        burst=burst,
        rate_exempt=exempt,
        max_pending=max_pending,
        admin_token=token,
        ingest_workers=default_workers() if ingest_workers is None else ingest_workers,
        journal=journal,
        journal_dir=str(journal_dir) if journal_dir is not None else None,
        trusted_proxies=proxies,
        tls_cert=tls_cert,
        tls_key=tls_key,
        db_memory=db_memory,
        test_lists=tuple(test_lists),
        test_helper=test_helper,
    )
    run(settings, host, port)


def check_test_helper(url: str) -> None:
    """``--test-helper``: an absolute http(s) URL (probes POST their control requests to it)."""
    from reachwatch.urls import split_url

    _, problem = split_url(url)
    if problem is not None:
        raise UserError(f"--test-helper: {problem}", fix="e.g. --test-helper https://th.example.org/")


def submit(
    file: Path = typer.Argument(..., help="Measurements, one JSON object per line."),
    collector: str = typer.Option(..., "--collector", help="Collector base URL."),
    outbox: Path = typer.Option(Path(".reachwatch-outbox"), "--outbox", help="On-disk queue directory."),
    retry_for: float = typer.Option(
        60.0, "--retry-for", min=0, help="Seconds to keep retrying an unreachable collector."
    ),
) -> None:
    """Queue FILE's measurements on disk and send them; unacknowledged ones stay queued."""
    from reachwatch.cli.measure import check_control_url
    from reachwatch.collector.queue import Outbox

    # as `measure --collector` does: a URL without http:// (or with ftp://) is no unreachable
    # collector to retry for --retry-for seconds and leave the measurements queued for
    check_control_url(collector, "--collector")
    if file.is_dir():
        raise UserError("a directory, not a file", where=str(file))
    if not file.exists():  # not is_file(): /dev/stdin and <(zcat x.jsonl.gz) are read too
        raise UserError("no such file", where=str(file))
    box = Outbox(outbox)
    try:
        with open(file, "rb") as fh:
            box.put_lines(fh, str(file))  # all or none: a bad line queues nothing
        result = asyncio.run(box.flush(collector, retry_for=retry_for))
    except KeyboardInterrupt:
        typer.echo(
            f"interrupted: what was queued stays in {box.pending_dir}, what was acknowledged is "
            "not sent again; run submit again to send the rest",
            err=True,
        )
        raise typer.Exit(130) from None
    rejected = f" (see {box.rejected_dir})" if result.rejected else ""
    typer.echo(f"sent {result.sent}, rejected {result.rejected}{rejected}, pending {result.remaining}")
    for rejection in sorted(result.rejections, key=_in_file_order)[:SHOWN_REJECTIONS]:
        typer.echo(f"{rejection.where()}: refused: {rejection.reason}", err=True)
    if result.rejected > SHOWN_REJECTIONS:
        typer.echo(f"... and {result.rejected - SHOWN_REJECTIONS} more refused", err=True)
    if result.rejected:
        typer.echo(
            f"the collector refused {result.rejected}: they are in {box.rejected_dir}, each with "
            "a .error saying why; correct those lines and submit them again",
            err=True,
        )
    if result.remaining:
        why = f"{result.error}; " if result.error else ""
        typer.echo(
            f"{why}{result.remaining} stay queued in {box.pending_dir}: run submit again to send "
            "them (with the right --collector, if it was not)",
            err=True,
        )
    if result.remaining or result.rejected:
        raise typer.Exit(1)


#: Refused measurements ``submit`` names one by one (the rest are counted)
SHOWN_REJECTIONS = 20


def _in_file_order(rejection: Any) -> tuple[str, int]:
    """A refusal's place in the files it came from (the outbox sends in no such order)."""
    if not rejection.origins:
        return (str(rejection.path), 0)
    name, _, line = rejection.origins[0].rpartition(":")
    return (name, int(line) if line.isdigit() else 0)


@geoip_app.command("update")
def geoip_update(
    directory: Path = typer.Option(Path("geoip"), "--dir", help="Where to put the mmdb files."),
) -> None:
    """Download DB-IP Lite ASN + country databases (current month)."""
    from reachwatch.collector.geoip import update

    for path in update(directory):
        typer.echo(str(path))


def register(app: typer.Typer) -> None:
    """Add `serve`, `submit` and `geoip update` to the root app."""
    app.command("serve")(serve)
    app.command("submit")(submit)
    app.add_typer(geoip_app, name="geoip")
