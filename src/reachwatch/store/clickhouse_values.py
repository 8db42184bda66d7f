"""Python values to ClickHouse 18.16's SQL literals and JSONEachRow rows, and back: what its HTTP
interface, which has no server-side parameters, is written and read in."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

from reachwatch.store.schema import COLUMN_NAMES, COLUMNS, EARLIEST, LATEST, Row

#: Literals (hashes, uids) in one IN list at most: ClickHouse parses at most ``max_query_size``
#: (256 KiB) of a query's text, and a batch of 7,300 lines' hashes went past it (a 503 for ever,
#: or a journal that could never be emptied); 2,000 uids of ~54 characters are ~110 KB
IN_LIST = 2_000


def chunks(values: Sequence[str], size: int = IN_LIST) -> Iterator[Sequence[str]]:
    """``values`` cut into IN lists of at most ``size`` (at most :data:`IN_LIST`)."""
    size = min(size, IN_LIST)
    for start in range(0, len(values), size):
        yield values[start : start + size]


def literal(value: Any) -> str:
    """A ClickHouse SQL literal for one parameter value."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.datetime):
        # a since/until outside the range DateTime holds would wrap (year 9999 matched everything,
        # year 1 was not even parsed): the range's ends mean the same for what is stored
        value = min(max(value, EARLIEST), LATEST)
        return f"toDateTime('{value:%Y-%m-%d %H:%M:%S}', 'UTC')"
    if isinstance(value, dt.date):
        value = min(max(value, EARLIEST.date()), LATEST.date())
        return f"toDate('{value:%Y-%m-%d}')"
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def render(sql: str, params: Sequence[Any]) -> str:
    pieces = sql.split("?")
    if len(pieces) != len(params) + 1:
        raise ValueError("placeholder count does not match parameters")
    out = [pieces[0]]
    for value, piece in zip(params, pieces[1:], strict=True):
        out.extend((literal(value), piece))
    return "".join(out)


_BOOLS = {c.name for c in COLUMNS if c.duckdb.startswith("BOOLEAN")}


def as_clickhouse(value: Any) -> Any:
    """A value as JSONEachRow gives it to ClickHouse: booleans as 0/1 (UInt8), the rest as is."""
    return int(value) if isinstance(value, bool) else value


def encode(row: Row) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in zip(COLUMN_NAMES, row.values(), strict=True):
        if name == "raw":
            value = base64.b64encode(value).decode()
        elif isinstance(value, bool):
            value = int(value)
        elif isinstance(value, dt.datetime):
            value = f"{value:%Y-%m-%d %H:%M:%S}"
        elif isinstance(value, dt.date):
            value = f"{value:%Y-%m-%d}"
        out[name] = value
    return out


EPOCH = dt.datetime(1970, 1, 1)


def decode(row: dict[str, Any]) -> dict[str, Any]:
    for name in _BOOLS:
        if name in row and row[name] is not None:
            row[name] = bool(row[name])
    if isinstance(row.get("measurement_start_time"), str):
        row["measurement_start_time"] = time_of(row["measurement_start_time"])
    if isinstance(row.get("measurement_start_day"), str):
        row["measurement_start_day"] = day_of(row["measurement_start_day"])
    return row


# 18.16 writes the epoch, the first instant it holds, as zeros (rows stored before EARLIEST)
def time_of(text: str) -> dt.datetime:
    return EPOCH if text.startswith("0000") else dt.datetime.fromisoformat(text)


def day_of(text: str) -> dt.date:
    return EPOCH.date() if text.startswith("0000") else dt.date.fromisoformat(text)
