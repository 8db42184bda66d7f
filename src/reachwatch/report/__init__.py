"""Reports: what measurements mean, rendered for people (tables, HTML, PDF, exports)."""

from __future__ import annotations

from reachwatch.report.build import ReportPaths, build, render_html
from reachwatch.report.events import load_events, parse_events_csv
from reachwatch.report.model import (
    STATES,
    Cell,
    Event,
    IspSummary,
    Measurement,
    Period,
    parse_cells,
    parse_events,
    parse_period,
    parse_summary,
)

__all__ = [
    "STATES",
    "Cell",
    "Event",
    "IspSummary",
    "Measurement",
    "Period",
    "ReportPaths",
    "build",
    "load_events",
    "parse_cells",
    "parse_events",
    "parse_events_csv",
    "parse_period",
    "parse_summary",
    "render_html",
]
