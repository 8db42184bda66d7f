"""`reachwatch verdict FILE.jsonl|-`: see reachwatch.verdict (the rules) and verdict.stream."""

from __future__ import annotations

import json
import sys
import zlib
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, BinaryIO

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
    if source == "-":
        clean = _judge(sys.stdin.buffer, "standard input", fmt)
    else:
        path = Path(source)
        if not path.exists():
            raise UserError(
                "no such file", where=source, fix="give a JSONL file of measurements, or - for stdin"
            )
        try:
            handle = path.open("rb")  # a file, or a pipe such as <(zcat a.jsonl.gz)
        except OSError as exc:
            raise UserError(f"cannot read: {exc.strerror}", where=source) from None
        with handle:
            clean = _judge(handle, source, fmt)
    raise typer.Exit(0 if clean else 1)


def _judge(handle: BinaryIO, name: str, fmt: Format) -> bool:
    """Every line of ``handle`` (plain or gzip JSONL)."""
    from reachwatch.verdict.stream import judge_lines, measurement_lines

    return _run(judge_lines(_read(measurement_lines(handle), name)), fmt, sys.stdout)


def _read(lines: BinaryIO, name: str) -> Iterator[bytes]:
    """The lines; a read error (a cut or corrupt gzip stream...) after some of them is a UserError
    naming where reading stopped: the lines before have their output already."""
    count = 0
    try:
        for line in lines:
            count += 1
            yield line
    except (OSError, EOFError, zlib.error) as exc:
        raise UserError(
            f"cannot read past line {count}: {exc}",
            where=name,
            fix="the file is cut or corrupt (a gzip file must be complete); the lines before were judged",
        ) from None


def _run(rows: Any, fmt: Format, out: IO[str]) -> bool:
    clean = True
    if fmt is Format.table:
        print("\t".join(TABLE_COLUMNS), file=sys.stderr)
    for row in rows:
        if row.warning:
            clean = False
            print(f"reachwatch: warning: {row.warning}", file=sys.stderr)
        if fmt is Format.json:
            out.write(_json_line(row.data))
        else:
            d = row.data
            cells = (row.line, d["blocking"], d["accessible"], d["x_technique"], d["x_rule"], d["input"])
            out.write("\t".join(_cell(c) for c in cells) + "\n")
    return clean


def _json_line(data: dict[str, Any]) -> str:
    """One JSON line, readable UTF-8; ASCII escapes when the input held a lone surrogate (valid
    JSON, ``"\\ud800"``, which UTF-8 cannot carry)."""
    text = json.dumps(data, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(data)
    return text + "\n"


def _cell(value: Any) -> str:
    """A table cell: one line, no tab inside (a string that would break the columns is quoted as JSON)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return json.dumps(value)
    text = str(value)
    if not text.isprintable() or "\t" in text:
        return json.dumps(text)
    return text


def register(app: typer.Typer) -> None:
    """Add `verdict` to the root app."""
    app.command("verdict")(verdict)
