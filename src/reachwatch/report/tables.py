"""Every table of the report as data, written as CSV and JSON beside the HTML.

A :class:`Table` is a name, a title, its columns and plain rows (str, int, float, None, lists of
str): the HTML, the CSV and the JSON are all made from the same rows, so they cannot disagree.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from reachwatch.report.model import Cell, Event, IspSummary

Value = str | int | float | None | list[str]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: CSV's line end (RFC 4180): Python's writer quotes a cell holding either of its characters, so
#: a lone CR in measurement text is quoted too (with "\n" it was not, and split the row)
CSV_LINE_END = "\r\n"


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[dict[str, Value], ...]

    def to_json(self) -> str:
        doc = {
            "table": self.name,
            "title": self.title,
            "columns": list(self.columns),
            "rows": list(self.rows),
        }
        return json.dumps(doc, ensure_ascii=False, indent=1) + "\n"

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator=CSV_LINE_END)
        writer.writerow(self.columns)
        for row in self.rows:
            writer.writerow([_csv_value(row.get(c)) for c in self.columns])
        return out.getvalue()

    def write(self, out_dir: Path) -> list[Path]:
        paths = [out_dir / f"{self.name}.csv", out_dir / f"{self.name}.json"]
        paths[0].write_text(self.to_csv(), encoding="utf-8")
        paths[1].write_text(self.to_json(), encoding="utf-8")
        return paths


def _csv_value(value: Value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        value = " ".join(value)
    if isinstance(value, float):
        return f"{value:.4f}"
    text = str(value)
    # A spreadsheet would run a cell starting like a formula: measurement data is hostile input.
    return "'" + text if text.startswith(FORMULA_START) else text


SUMMARY_COLUMNS = (
    "domain", "probe_cc", "probe_asn", "probe_network_name", "n_probes", "n_measurements", "state",
    "technique", "blocked_share", "ci_low", "ci_high", "blocked_since", "last_blocked", "blocked_days",
    "first_seen", "last_seen", "witnesses",
)  # fmt: skip
CELL_COLUMNS = (
    "day", "domain", "probe_cc", "probe_asn", "probe_network_name", "state", "n_probes",
    "n_measurements", "blocked_share", "ci_low", "ci_high", "technique", "first_seen", "last_seen",
    "witnesses",
)  # fmt: skip
EVENT_COLUMNS = ("date", "end_date", "label", "description")


def _row(model: BaseModel, columns: Sequence[str]) -> dict[str, Value]:
    data = model.model_dump(mode="json")
    return {c: data.get(c) for c in columns}


def sort_summary(rows: Sequence[IspSummary]) -> list[IspSummary]:
    return sorted(rows, key=lambda r: (r.domain, r.probe_cc, r.asn_number))


def summary_table(rows: Sequence[IspSummary]) -> Table:
    return Table(
        "isp_summary",
        "Per-network results over the period",
        SUMMARY_COLUMNS,
        tuple(_row(r, SUMMARY_COLUMNS) for r in sort_summary(rows)),
    )


def cells_table(cells: Sequence[Cell]) -> Table:
    ordered = sorted(cells, key=lambda c: (c.domain, c.probe_cc, c.asn_number, c.day))
    return Table(
        "daily_cells",
        "Per-network, per-day results (the data behind the timelines)",
        CELL_COLUMNS,
        tuple(_row(c, CELL_COLUMNS) for c in ordered),
    )


def events_table(events: Sequence[Event]) -> Table:
    return Table(
        "events",
        "Events marked on the timelines",
        EVENT_COLUMNS,
        tuple(_row(e, EVENT_COLUMNS) for e in events),
    )
