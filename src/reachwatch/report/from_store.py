"""The report's inputs read from a store: per-ISP summary rows over the period and daily cells."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reachwatch.aggregate.cells import DEFAULT_KEYS, Cell
from reachwatch.aggregate.sql import network_names, query_cells, unattributed_count
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


def summary_records(reader: Reader, f: Filters, *, unattributed: bool = False) -> list[dict[str, Any]]:
    """One record per (country, network, domain) over the selection (attributed measurements
    only, unless ``unattributed``: see :mod:`reachwatch.aggregate.sql`)."""
    names = network_names(reader, f, unattributed=unattributed)
    return records(query_cells(reader, SUMMARY_KEYS, f, unattributed=unattributed), names)


def daily_records(reader: Reader, f: Filters, *, unattributed: bool = False) -> list[dict[str, Any]]:
    """One record per (country, network, domain, day), as :func:`summary_records`."""
    names = network_names(reader, f, unattributed=unattributed)
    return records(query_cells(reader, DEFAULT_KEYS, f, unattributed=unattributed), names)


#: How to count the measurements left out, said wherever they are
INCLUDE_UNATTRIBUTED = (
    "--include-unattributed counts them too, under the network each probe claimed (anyone can "
    "claim any network: say so where you publish them)"
)


def left_out(count: int) -> str:
    """What the per-network findings left out, and why."""
    return (
        f"{count} measurement{'s' if count != 1 else ''} left out: the collector could not place "
        f"{'their submitters' if count != 1 else 'its submitter'} on a network (it ran without "
        "--asn-db/--country-db, or their addresses are not in them)"
    )


def report_from_store(
    location: str, f: Filters, out: Path, *, events: Sequence[Any] = (), title: str,
    period: tuple[dt.date, dt.date] | None = None, pdf: bool = True, unattributed: bool = False,
) -> ReportPaths:  # fmt: skip
    """Read the summary and daily cells of ``location`` (a DuckDB file or ClickHouse URL) and build."""
    from reachwatch.report import build

    reader = open_reader(location)
    try:
        summary = summary_records(reader, f, unattributed=unattributed)
        cells = daily_records(reader, f, unattributed=unattributed)
        missing = 0 if cells or unattributed else unattributed_count(reader, f)
    finally:
        reader.close()
    if missing:
        raise UserError(
            f"no attributed measurements in this selection; {left_out(missing)}", fix=INCLUDE_UNATTRIBUTED
        )
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
