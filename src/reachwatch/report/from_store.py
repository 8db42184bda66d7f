"""The report's inputs read from a store: per-ISP summary rows over the period and daily cells."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reachwatch.aggregate.cells import DEFAULT_KEYS, Cell
from reachwatch.aggregate.sql import network_names, query_cells
from reachwatch.errors import UserError
from reachwatch.report.build import ReportPaths
from reachwatch.store.query import Filters
from reachwatch.store.readers import Reader, open_reader

SUMMARY_KEYS = ("probe_cc", "probe_asn", "domain")


def period_filters(
    since: dt.date | None, until: dt.date | None, *, cc: str | None = None, asn: str | None = None,
    domain: str | None = None,
) -> Filters:  # fmt: skip
    """Filters for whole days ``since``..``until`` (inclusive)."""
    return Filters(
        probe_cc=cc,
        probe_asn=asn,
        domain=domain,
        since=dt.datetime.combine(since, dt.time()) if since else None,
        until=dt.datetime.combine(until + dt.timedelta(days=1), dt.time()) if until else None,
    )


def records(cells: Sequence[Cell], names: dict[str, str]) -> list[dict[str, Any]]:
    out = []
    for cell in cells:
        rec = cell.as_dict()
        if "probe_asn" in rec:
            rec["probe_network_name"] = names.get(str(rec["probe_asn"]), "")
        out.append(rec)
    return out


def summary_records(reader: Reader, f: Filters) -> list[dict[str, Any]]:
    return records(query_cells(reader, SUMMARY_KEYS, f), network_names(reader, f))


def daily_records(reader: Reader, f: Filters) -> list[dict[str, Any]]:
    return records(query_cells(reader, DEFAULT_KEYS, f), network_names(reader, f))


def report_from_store(
    location: str, f: Filters, out: Path, *, events: Sequence[Any] = (), title: str,
    period: tuple[dt.date, dt.date] | None = None, pdf: bool = True,
) -> ReportPaths:  # fmt: skip
    """Read the summary and daily cells of ``location`` (a DuckDB file or ClickHouse URL) and build."""
    from reachwatch.report import build

    reader = open_reader(location)
    try:
        summary, cells = summary_records(reader, f), daily_records(reader, f)
    finally:
        reader.close()
    if not cells:
        raise UserError("no measurements in this selection", fix="check --cc/--domain/--since/--until")
    return build(summary, cells, list(events), out, title=title, period=period, pdf=pdf)


def isp_cells(location: str, f: Filters | None = None) -> list[dict[str, Any]]:
    """One record per (country, network, domain) over the whole selection: the per-ISP table."""
    reader = open_reader(location)
    try:
        return summary_records(reader, f or Filters())
    finally:
        reader.close()
