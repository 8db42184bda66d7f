"""Build the published report: one self-contained HTML file, its PDF, and every table as CSV + JSON."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reachwatch import __version__
from reachwatch.errors import UserError, make_directory
from reachwatch.report import chromium
from reachwatch.report.blocked_days import with_blocked_days
from reachwatch.report.finding import findings as auto_findings
from reachwatch.report.model import (
    BLOCKING_STATES,
    Cell,
    Event,
    IspSummary,
    Period,
    parse_cells,
    parse_events,
    parse_period,
    parse_summary,
)
from reachwatch.report.render import csp_hash, render, stylesheet
from reachwatch.report.selfcontained import external_references
from reachwatch.report.tables import Table, cells_table, events_table, sort_summary, summary_table
from reachwatch.report.text import country_title
from reachwatch.report.timeline import Timeline, build_timeline


@dataclass(frozen=True, slots=True)
class ReportPaths:
    html: Path
    pdf: Path | None
    tables: tuple[Path, ...] = field(default=())

    def all(self) -> list[Path]:
        return [self.html, *([self.pdf] if self.pdf else []), *self.tables]


@dataclass(frozen=True, slots=True)
class SummaryGroup:
    domain: str
    country: str
    show_cc: bool
    rows: list[IspSummary]


@dataclass(frozen=True, slots=True)
class TimelineGroup:
    heading: str
    timelines: list[Timeline]


def _facts(summary: Sequence[IspSummary], cells: Sequence[Cell], period: Period) -> dict[str, int]:
    judged = [r for r in summary if r.state != "insufficient"]
    return {
        "networks": len({r.probe_asn for r in summary} | {c.probe_asn for c in cells}),
        "domains": len({r.domain for r in summary} | {c.domain for c in cells}),
        "measurements": sum(c.n_measurements for c in cells) or sum(r.n_measurements for r in summary),
        "days": len(period.days()),
        "days_with_data": len({c.day for c in cells if c.n_measurements > 0}),
        "judged_pairs": len(judged),
        "blocking_pairs": sum(r.state in BLOCKING_STATES for r in judged),
    }


def summary_groups(summary: Sequence[IspSummary]) -> list[SummaryGroup]:
    ccs = {r.probe_cc for r in summary}
    groups: dict[tuple[str, str], list[IspSummary]] = {}
    for r in sort_summary(summary):
        groups.setdefault((r.domain, r.probe_cc), []).append(r)
    return [SummaryGroup(d, country_title(cc), len(ccs) > 1, rows) for (d, cc), rows in groups.items()]


def timeline_groups(
    summary: Sequence[IspSummary], cells: Sequence[Cell], period: Period, events: Sequence[Event]
) -> list[TimelineGroup]:
    names: dict[tuple[str, str, str], str] = {}
    series: dict[tuple[str, str, str], list[Cell]] = {}
    for r in [*summary, *cells]:
        key = (r.domain, r.probe_cc, r.probe_asn)
        series.setdefault(key, [])
        if r.probe_network_name:
            names[key] = r.probe_network_name
    for c in cells:
        series[(c.domain, c.probe_cc, c.probe_asn)].append(c)
    out: dict[tuple[str, str], TimelineGroup] = {}
    for key in sorted(series, key=lambda k: (k[0], k[1], int(k[2][2:]))):
        domain, cc, asn = key
        group = out.setdefault((domain, cc), TimelineGroup(f"{domain} in {country_title(cc)}", []))
        title = names.get(key, asn)
        tl = build_timeline(f"{domain}|{cc}|{asn}", title, asn, series[key], period, events)
        group.timelines.append(tl)
    return list(out.values())


def render_html(
    summary: Sequence[IspSummary],
    cells: Sequence[Cell],
    events: Sequence[Event],
    *,
    title: str,
    period: Period,
    subtitle: str = "",
    finding: str | Sequence[str] | None = None,
    tables: Sequence[Table] = (),
    generated: str | None = None,
) -> str:
    """The report as one HTML string (pure: no files, no browser). The summary rows' blocked
    days are taken from ``cells`` (:func:`~reachwatch.report.blocked_days.with_blocked_days`)."""
    css = stylesheet("reachwatch.report", "templates/report.css")
    summary = with_blocked_days(summary, cells)
    sentences = [finding] if isinstance(finding, str) else list(finding or auto_findings(summary, period))
    html = render(
        "report.html.j2",
        title=title,
        subtitle=subtitle,
        period=period,
        findings=sentences,
        facts=_facts(summary, cells, period),
        summary_groups=summary_groups(summary),
        timeline_groups=timeline_groups(summary, cells, period, events),
        events=sorted(
            (e for e in events if e.date <= period.end and (e.end_date or e.date) >= period.start),
            key=lambda e: e.date,
        ),
        tables=tables,
        css=css,
        style_hash=csp_hash(css),
        version=__version__,
        generated=generated or dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
    problems = external_references(html)
    if problems:  # our own template's bug, never the data's: data is escaped
        raise AssertionError(f"the report would load external resources: {problems[:5]}")
    return html


def build(
    summary_rows: Iterable[Mapping[str, Any] | IspSummary],
    cells: Iterable[Mapping[str, Any] | Cell],
    events: Iterable[Mapping[str, Any] | Event],
    out_dir: Path | str,
    *,
    title: str,
    period: Period | Mapping[str, Any] | tuple[object, object] | None = None,
    subtitle: str = "",
    finding: str | Sequence[str] | None = None,
    pdf: bool = True,
    name: str = "report",
) -> ReportPaths:
    """Validate the inputs, write ``<name>.html``, ``<name>.pdf`` and one CSV + JSON per table.

    ``finding`` overrides the automatic one-line finding(s); ``period`` defaults to the days the
    cells cover. Returns the paths written.
    """
    summary = parse_summary(summary_rows)
    cell_list = parse_cells(cells)
    event_list = parse_events(events)
    if not summary and not cell_list:
        raise UserError("nothing to report: no summary rows and no cells")
    span = parse_period(period) if period is not None else Period.covering(cell_list)
    out = Path(out_dir)
    make_directory(out, "the output folder")
    in_period = [c for c in cell_list if c.day in span]
    summary = with_blocked_days(summary, in_period)
    tables = [summary_table(summary), cells_table(in_period), events_table(event_list)]
    html = render_html(
        summary,
        in_period,
        event_list,
        title=title,
        period=span,
        subtitle=subtitle,
        finding=finding,
        tables=tables,
    )
    html_path = out / f"{name}.html"
    html_path.write_text(html, encoding="utf-8")
    table_paths = [p for t in tables for p in t.write(out)]
    pdf_path = chromium.print_pdf(html_path, out / f"{name}.pdf") if pdf else None
    return ReportPaths(html=html_path, pdf=pdf_path, tables=tuple(table_paths))
