"""`reachwatch measure`: parse and check arguments, then hand over to reachwatch.probe.runner."""

from __future__ import annotations

import re
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TextIO

import typer

from reachwatch.errors import UserError
from reachwatch.urls import split_url

HELP = (
    "Measure URLs (web_connectivity): write one JSON measurement per line and/or queue them on disk "
    "and send them to a collector (--collector)."
)


def check_control_url(url: str, option: str = "--control") -> str:
    _, problem = split_url(url)
    if problem is not None:
        raise UserError(f"{option}: {problem}", fix=f"e.g. {option} http://127.0.0.1:8080/")
    return url


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise UserError(f"{name} must be greater than 0, got {value}")


def measure(
    urls: list[str] = typer.Argument(None, help="URLs to measure.", show_default=False),
    lists: list[Path] = typer.Option([], "--list", help="Citizen Lab test list (CSV); repeatable."),
    control: str = typer.Option(..., "--control", help="Control helper URL (POST /)."),
    parallel: int = typer.Option(100, "--parallel", help="Measurements at once (in all workers)."),
    workers: int = typer.Option(
        0, "--workers", help="Measuring processes (0: one per core, at most 4; 1 for short lists)."
    ),
    output: str | None = typer.Option(
        None, "--output", help="Output file, or - for stdout (default: stdout, unless --collector)."
    ),
    collector: str | None = typer.Option(None, "--collector", help="Collector base URL to send to."),
    outbox: Path = typer.Option(
        Path(".reachwatch-outbox"), "--outbox", help="On-disk queue for --collector (kept between runs)."
    ),
    flush_timeout: float = typer.Option(
        30.0, "--flush-timeout", help="Seconds to wait at the end for the collector to take the rest."
    ),
    resolver: str | None = typer.Option(None, "--resolver", help="IP[:PORT] for direct UDP queries."),
    ca_file: Path | None = typer.Option(None, "--ca-file", help="Extra trust anchors (PEM)."),
    probe_asn: str = typer.Option("AS0", "--probe-asn"),
    probe_cc: str = typer.Option("ZZ", "--probe-cc"),
    probe_network_name: str = typer.Option("", "--probe-network-name"),
    dns_timeout: float = typer.Option(4.0, "--dns-timeout"),
    tcp_timeout: float = typer.Option(10.0, "--tcp-timeout"),
    tls_timeout: float = typer.Option(10.0, "--tls-timeout"),
    http_timeout: float = typer.Option(10.0, "--http-timeout"),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar on stderr."),
) -> None:
    from reachwatch.probe.config import ProbeConfig, Timeouts, parse_resolver
    from reachwatch.probe.runner import run_sync
    from reachwatch.probe.submit import Submitter
    from reachwatch.probe.workers import default_workers
    from reachwatch.testlists import collect_targets

    targets = collect_targets(urls or [], lists)
    if not targets:
        raise UserError("nothing to measure", fix="give URLs as arguments or --list FILE")
    if parallel < 1:
        raise UserError(f"--parallel must be at least 1, got {parallel}")
    if workers < 0:
        raise UserError(f"--workers must be 0 (one per core) or more, got {workers}")
    for name, value in (("--dns-timeout", dns_timeout), ("--tcp-timeout", tcp_timeout),
                        ("--tls-timeout", tls_timeout), ("--http-timeout", http_timeout),
                        ("--flush-timeout", flush_timeout)):  # fmt: skip
        _positive(name, value)
    if not re.fullmatch(r"AS\d{1,10}", probe_asn):
        raise UserError(f"--probe-asn {probe_asn!r} is not like AS64501")
    if not re.fullmatch(r"[A-Z]{2}", probe_cc):
        raise UserError(f"--probe-cc {probe_cc!r} is not a two-letter upper-case country code")
    if ca_file is not None and not ca_file.is_file():
        raise UserError("no such file", where=str(ca_file), fix="--ca-file takes a PEM file")
    cfg = ProbeConfig(
        control_url=check_control_url(control),
        resolver=parse_resolver(resolver),
        ca_file=ca_file,
        timeouts=Timeouts(dns=dns_timeout, tcp=tcp_timeout, tls=tls_timeout, http=http_timeout),
        probe_asn=probe_asn,
        probe_cc=probe_cc,
        probe_network_name=probe_network_name,
    )
    cfg.ssl_context  # noqa: B018  (load --ca-file now: a bad file is a UserError, not a failure per URL)
    submitter = None
    if collector is not None:
        try:
            submitter = Submitter(check_control_url(collector, "--collector"), outbox)
        except OSError as exc:
            raise UserError(f"cannot use the outbox: {exc.strerror}", where=str(outbox)) from None
    with ExitStack() as stack:
        out: TextIO | None = sys.stdout if output == "-" or (output is None and submitter is None) else None
        if output not in (None, "-"):
            try:
                out = stack.enter_context(open(output, "w", encoding="utf-8"))
            except OSError as exc:
                raise UserError(f"cannot write: {exc.strerror}", where=output) from None
        run_sync(targets, cfg, out, parallel=parallel, progress=False if no_progress else None,
                 submitter=submitter, flush_timeout=flush_timeout,
                 workers=workers or default_workers(len(targets)))  # fmt: skip
    if submitter is not None:
        typer.echo(f"reachwatch: {submitter.summary()}", err=True)


def register(app: typer.Typer) -> None:
    """Add `measure` to the root app."""
    app.command("measure", help=HELP)(measure)
