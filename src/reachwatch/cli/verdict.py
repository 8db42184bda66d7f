"""`reachwatch verdict FILE.jsonl|-`: see reachwatch.verdict (the rules) and verdict.stream."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

import typer

from reachwatch.errors import UserError

TABLE_COLUMNS = ("line", "blocking", "accessible", "x_technique", "x_rule", "input")


class Format(StrEnum):
    json = "json"
    table = "table"


def verdict(
    source: str = typer.Argument(
        ..., metavar="FILE.jsonl|-", help="Measurements, one per line ('-': stdin)."
    ),
    fmt: Format = typer.Option(Format.json, "--format", help="json: one object per line; table: columns."),
) -> None:
    """Judge each measurement: one output line per input line, in order.

    Exit code 0 when every line was a web_connectivity measurement, 1 otherwise (each such
    line still gets its output line, and a warning on stderr).
    """
    from reachwatch.verdict.stream import judge_lines

    if source == "-":
        clean = _run(judge_lines(sys.stdin.buffer), fmt, sys.stdout)
    else:
        path = Path(source)
        if not path.is_file():
            raise UserError(
                "no such file", where=source, fix="give a JSONL file of measurements, or - for stdin"
            )
        with path.open("rb") as handle:
            clean = _run(judge_lines(handle), fmt, sys.stdout)
    raise typer.Exit(0 if clean else 1)


def _run(rows: Any, fmt: Format, out: IO[str]) -> bool:
    clean = True
    if fmt is Format.table:
        print("\t".join(TABLE_COLUMNS), file=sys.stderr)
    for row in rows:
        if row.warning:
            clean = False
            print(f"reachwatch: warning: {row.warning}", file=sys.stderr)
        if fmt is Format.json:
            out.write(json.dumps(row.data, ensure_ascii=False) + "\n")
        else:
            d = row.data
            cells = (row.line, d["blocking"], d["accessible"], d["x_technique"], d["x_rule"], d["input"])
            out.write("\t".join(_cell(c) for c in cells) + "\n")
    return clean


def _cell(value: Any) -> str:
    return "null" if value is None else json.dumps(value) if isinstance(value, bool) else str(value)


def register(app: typer.Typer) -> None:
    """Add `verdict` to the root app."""
    app.command("verdict")(verdict)
