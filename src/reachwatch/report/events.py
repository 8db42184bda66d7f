"""Events to mark on timelines, from a CSV file: ``date,label[,end_date][,description]``.

The header row is required and names the columns (any order; ``end_date`` and ``description``
may be absent). Dates are ``YYYY-MM-DD``. Blank lines and lines starting with ``#`` are skipped.
Every error names the file and the line.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

from pydantic import ValidationError

from reachwatch.errors import UserError
from reachwatch.report.model import Event

COLUMNS = ("date", "label", "end_date", "description")
REQUIRED = ("date", "label")


def load_events(path: Path | str) -> list[Event]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise UserError(f"cannot read events: {exc.strerror}", where=str(path)) from None
    except UnicodeDecodeError as exc:
        raise UserError(f"not UTF-8 text ({exc.reason})", where=str(path)) from None
    return parse_events_csv(text, source=str(path))


def parse_events_csv(text: str, source: str = "<events>") -> list[Event]:
    lines = [
        (n, line)
        for n, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        raise UserError(
            "no header row", where=source, fix="start the file with: date,label,end_date,description"
        )
    header_no, header_line = lines[0]
    header = [h.strip().lower() for h in next(csv.reader([header_line]))]
    unknown = [h for h in header if h not in COLUMNS]
    missing = [h for h in REQUIRED if h not in header]
    if unknown or missing:
        problem = f"unknown column(s) {unknown}" if unknown else f"missing column(s) {missing}"
        raise UserError(
            f"bad header: {problem}",
            where=f"{source}:{header_no}",
            fix="the header is date,label and optionally end_date,description",
        )
    events = []
    for lineno, line in lines[1:]:
        where = f"{source}:{lineno}"
        values = next(csv.reader([line]))
        if len(values) > len(header):
            raise UserError(f"{len(values)} fields for {len(header)} columns", where=where)
        row = {k: v.strip() for k, v in zip(header, values, strict=False)}
        events.append(_event(row, where))
    return sorted(events, key=lambda e: (e.date, e.label))


def _date(value: str, column: str, where: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise UserError(
            f"{column} {value!r} is not a date", where=where, fix="write dates as YYYY-MM-DD"
        ) from None


def _event(row: dict[str, str], where: str) -> Event:
    if not row.get("date"):
        raise UserError("date is empty", where=where)
    if not row.get("label"):
        raise UserError("label is empty", where=where, fix="give each event a short label")
    end = row.get("end_date") or None
    try:
        return Event(
            date=_date(row["date"], "date", where),
            label=row["label"],
            end_date=_date(end, "end_date", where) if end else None,
            description=row.get("description", ""),
        )
    except ValidationError as exc:
        raise UserError(str(exc.errors()[0]["msg"]), where=where) from None
