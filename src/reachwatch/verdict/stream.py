"""Judge a JSONL stream, one output row per input line, without holding the file in memory."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Final, cast

from reachwatch.verdict.engine import decide
from reachwatch.verdict.rules import WEB_CONNECTIVITY

NULL_KEYS: Final = (
    "dns_consistency",
    "body_length_match",
    "body_proportion",
    "status_code_match",
    "headers_match",
    "title_match",
    "blocking",
    "accessible",
    "x_technique",
)


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    data: dict[str, Any]
    warning: str | None  # set when the line was not a web_connectivity measurement


GZIP_MAGIC: Final = b"\x1f\x8b"


def measurement_lines(handle: BinaryIO) -> BinaryIO:
    """The lines of a JSONL stream, gzip-compressed or not (OONI publishes ``.jsonl.gz``).

    Works on pipes too (peeks, never seeks). Reading a cut or corrupt gzip stream raises
    ``OSError``, ``EOFError`` or ``zlib.error`` where the damage is.
    """
    peek = handle.peek(2) if isinstance(handle, io.BufferedReader) else b""
    if peek[:2] == GZIP_MAGIC:
        return cast(BinaryIO, gzip.GzipFile(fileobj=handle, mode="rb"))
    return handle


def judge_lines(lines: Iterable[str | bytes]) -> Iterator[Row]:
    for number, line in enumerate(lines, start=1):
        yield judge_line(number, line)


def judge_line(number: int, line: str | bytes) -> Row:
    try:
        measurement = json.loads(line)
    except ValueError as exc:
        return _rejected(number, None, "input.not-json", f"not JSON: {exc}")
    if not isinstance(measurement, dict):
        return _rejected(number, None, "input.not-an-object", "not a JSON object")
    raw_input = measurement.get("input")
    test_name = measurement.get("test_name")
    if test_name != WEB_CONNECTIVITY:
        why = f"test_name is {test_name!r}, not {WEB_CONNECTIVITY!r}"
        return _rejected(number, measurement, "input.not-web-connectivity", why)
    data: dict[str, Any] = {"input": raw_input}
    _ids(measurement, data)
    data.update(decide(measurement).as_test_keys())
    return Row(number, data, None)


def _ids(measurement: dict[str, Any], data: dict[str, Any]) -> None:
    for key in ("measurement_uid", "report_id"):
        value = measurement.get(key)
        if value is not None:
            data[key] = value


def _rejected(number: int, measurement: dict[str, Any] | None, rule: str, why: str) -> Row:
    data: dict[str, Any] = {"input": measurement.get("input") if measurement else None}
    if measurement:
        _ids(measurement, data)
    data.update(dict.fromkeys(NULL_KEYS))
    data["x_rule"] = rule
    data["error"] = why
    return Row(number, data, f"line {number}: {why}")
