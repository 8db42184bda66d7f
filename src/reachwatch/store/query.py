"""SQL for reads, generated in one place for both backends.

Statements use ``?`` placeholders; the DuckDB backend binds them, the ClickHouse backend renders
them as escaped literals (its 18.16 HTTP interface has no server-side parameters).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import operator
from typing import Any, Literal

from reachwatch.observations.text import norm_host, url_parts
from reachwatch.store.schema import COLUMN_NAMES, EARLIEST, LATEST, TABLE

#: The aggregation's axes: OONI's, but its ``blocking_type`` (read from its scores, not stored here)
AXES = ("measurement_start_day", "probe_cc", "probe_asn", "domain", "category_code", "test_name", "input")
Dialect = Literal["duckdb", "clickhouse"]
LIST_COLUMNS = tuple(c for c in COLUMN_NAMES if c not in ("raw", "content_hash"))


#: What a filter of several values takes: any one of them (OONI's ``probe_cc=IT,DE``)
AnyOf = str | tuple[str, ...] | None


@dataclasses.dataclass(frozen=True)
class Filters:
    probe_cc: AnyOf = None
    probe_asn: AnyOf = None
    domain: AnyOf = None
    input: str | None = None
    category_code: str | None = None
    test_name: AnyOf = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    #: the window's edges: by default ``since`` is in it and ``until`` is not (the reports' whole
    #: days, the aggregation); OONI's list has the measurements after ``since``, up to and
    #: including ``until`` (``since_included=False, until_included=True``)
    since_included: bool = True
    until_included: bool = False
    blocking: str | None = None
    report_id: str | None = None
    #: OONI's list flags, each row's as stored (``anomaly``: blocking found; ``confirmed``: by a
    #: fingerprint; ``failure``: no verdict)
    anomaly: bool | None = None
    confirmed: bool | None = None
    failure: bool | None = None
    #: whether the collector placed the submitter on a network (ASN and country): None for both
    attributed: bool | None = None
    #: one measurement by its uid (OONI's ``measurement_meta``, ``raw_measurement``)
    measurement_uid: str | None = None
    #: True: only measurements without an input (OONI's lookup by ``report_id`` with no ``input``)
    no_input: bool = False


def domain_filter(value: str) -> str:
    """A site as a person names it (``WWW.Example.ORG.``, ``bücher.de``, or a URL) in the form
    the store keeps domains (lower case, no final dot, punycode; the collector's
    ``analysis.domain``); "" when it names no host."""
    if "://" in value:
        return url_parts(value.strip())[1]
    return norm_host(value)


#: What the list may be ordered by (OONI's ``order_by``, but ``test_start_time``, not stored)
ORDER_BY = ("measurement_start_time", "input", "probe_cc", "probe_asn", "test_name")


@dataclasses.dataclass(frozen=True)
class ListOrder:
    """The list's order: a column of :data:`ORDER_BY`, newest or greatest first by default (as
    OONI's list), rows without it last, then by ``measurement_uid`` so that pages never overlap
    nor skip a row."""

    by: str = "measurement_start_time"
    descending: bool = True


def _whole_second(when: dt.datetime | None, up: bool) -> dt.datetime | None:
    """``when`` as a whole second, rounded up (``up``) or down. Stored times are whole seconds
    (OONI's ``measurement_start_time``; ClickHouse's DateTime holds no more), so ``>= 10:00:00.5``
    is ``>= 10:00:01``, ``< 10:00:00.5`` is ``< 10:00:01`` (up), and ``> 10:00:00.5`` is
    ``> 10:00:00``, ``<= 10:00:00.5`` is ``<= 10:00:00`` (down): the same rows on both backends,
    where ClickHouse dropped the fraction of a bound and DuckDB kept it."""
    if when is None or not when.microsecond:
        return when
    return when.replace(microsecond=0) + dt.timedelta(seconds=1 if up else 0)


def _equal(name: str, value: str | tuple[str, ...]) -> tuple[str, list[Any]]:
    """``name = ?``, or ``name IN (?, ...)`` for several values (both stores, ClickHouse 18.16 too)."""
    values = list(value) if isinstance(value, tuple) else [value]
    if not values:
        raise ValueError(f"{name}: an empty list of values (leave the filter out: None)")
    if len(values) == 1:
        return f"{name} = ?", values
    return f"{name} IN ({', '.join('?' * len(values))})", values


#: the comparisons a time bound is made with, as Python evaluates them on the stored ends
_COMPARE: dict[str, Any] = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}


def where(f: Filters) -> tuple[str, list[Any]]:
    """The WHERE clause (possibly empty) and its parameters."""
    parts: list[str] = []
    params: list[Any] = []
    since = _whole_second(f.since, up=f.since_included)
    until = _whole_second(f.until, up=not f.until_included)
    for name in (
        "probe_cc", "probe_asn", "domain", "input", "category_code", "test_name", "report_id",
        "anomaly", "confirmed", "failure", "attributed", "measurement_uid",
    ):  # fmt: skip
        value = getattr(f, name)
        if isinstance(value, (str, tuple)):
            part, values = _equal(name, value)
            parts.append(part)
            params += values
        elif value is not None:
            parts.append(f"{name} = ?")
            params.append(value)
    if f.no_input:
        parts.append("input IS NULL")
    # every stored time is within EARLIEST..LATEST (the collector refuses others): a bound outside
    # them is decided here, as ClickHouse's DateTime cannot even hold it (it would wrap)
    after = ">=" if f.since_included else ">"
    before = "<=" if f.until_included else "<"
    if (since is not None and not _COMPARE[after](LATEST, since)) or (
        until is not None and not _COMPARE[before](EARLIEST, until)
    ):
        parts.append("1 = 0")  # nothing stored can match
    else:
        # the day too, the same bound: ClickHouse skips the other days' partitions (its partition
        # key; a time alone reads every part), DuckDB the row groups of other days
        if since is not None and not _COMPARE[after](EARLIEST, since):
            parts.append(f"measurement_start_day >= ? AND measurement_start_time {after} ?")
            params += (since.date(), since)
        if until is not None and not _COMPARE[before](LATEST, until):
            parts.append(f"measurement_start_day <= ? AND measurement_start_time {before} ?")
            params += (until.date(), until)
    if f.blocking is not None:
        if f.blocking == "true":
            parts.append("anomaly = ?")
            params.append(True)
        elif f.blocking == "null":
            parts.append("blocking IS NULL")
        else:
            parts.append("blocking = ?")
            params.append(f.blocking)
    return (" WHERE " + " AND ".join(parts) if parts else ""), params


def list_sql(
    f: Filters, limit: int, offset: int, dialect: Dialect, order: ListOrder = ListOrder()
) -> tuple[str, list[Any]]:
    if order.by not in ORDER_BY:
        raise ValueError(f"unknown order {order.by!r}")
    clause, params = where(f)
    cols = ", ".join(LIST_COLUMNS)
    page = f"LIMIT {offset:d}, {limit:d}" if dialect == "clickhouse" else f"LIMIT {limit:d} OFFSET {offset:d}"
    # a row without the column (no input) last either way, on both backends
    way = " DESC NULLS LAST" if order.descending else " NULLS LAST"
    by = ", ".join(f"{column}{way}" for column in _ORDER.get(order.by, order.by).split(", "))
    sql = f"SELECT {cols} FROM {TABLE}{clause} ORDER BY {by}, measurement_uid {page}"
    return sql, params


def count_sql(f: Filters) -> tuple[str, list[Any]]:
    clause, params = where(f)
    return f"SELECT count(*) FROM {TABLE}{clause}", params


#: an axis's order when its text's is not the one meant: ``probe_asn`` by number (AS1, AS137,
#: AS3269, AS30722), which for ``AS<digits>`` without leading zeros (what the collector stores) is
#: by length, then as text; the same SQL in DuckDB and ClickHouse (18.16 included), no cast that
#: a malformed value could make fail
_ORDER = {"probe_asn": "length(probe_asn), probe_asn"}

COUNTS = ("measurement_count", "ok_count", "anomaly_count", "confirmed_count", "failure_count")


#: The periods the aggregation's time axis can count by (OONI's ``time_grain``, ``auto`` resolved)
GRAINS = ("hour", "day", "week", "month", "year")
#: the time axis's column in the SQL: not ``measurement_start_day``, which ClickHouse would then
#: read as the expression everywhere in the statement, its WHERE included (its aliases are global)
PERIOD = "x_period"
#: each period's first instant, from the stored columns. Weeks start on Sunday, as OONI's
#: (ClickHouse's ``toStartOfWeek``, mode 0); written with functions ClickHouse 18.16 has. A
#: ClickHouse week is its Sunday's day number (days since 1970-01-01), made a date by the store
_PERIOD_START: dict[str, dict[str, str]] = {
    "duckdb": {
        "hour": "date_trunc('hour', measurement_start_time)",
        "day": "measurement_start_day",
        "week": "CAST(date_trunc('week', measurement_start_day + 1) AS DATE) - 1",
        "month": "CAST(date_trunc('month', measurement_start_day) AS DATE)",
        "year": "CAST(date_trunc('year', measurement_start_day) AS DATE)",
    },
    "clickhouse": {
        "hour": "toStartOfHour(measurement_start_time)",
        "day": "measurement_start_day",
        # as a day number: the Sunday before 1970-01-04 is before what a Date holds (1970-01-01)
        "week": "toInt32(measurement_start_day) - toInt32(toDayOfWeek(measurement_start_day) % 7)",
        "month": "toStartOfMonth(measurement_start_day)",
        "year": "toStartOfYear(measurement_start_day)",
    },
}


def aggregate_sql(f: Filters, axes: list[str], dialect: Dialect, grain: str = "day") -> tuple[str, list[Any]]:
    """OONI aggregation counts grouped by up to two axes (checked against :data:`AXES`), the time
    axis (``measurement_start_day``) by ``grain`` (:data:`GRAINS`), answered as :data:`PERIOD`."""
    for axis in axes:
        if axis not in AXES:
            raise ValueError(f"unknown axis {axis!r}")
    if grain not in GRAINS:
        raise ValueError(f"unknown time grain {grain!r}")
    clause, params = where(f)
    # as OONI's API counts them, each row in exactly one of the four (they add up to
    # measurement_count): a failure first, then a confirmed blocking, then an anomaly, else ok
    counts = (
        "count(*) AS measurement_count, "
        "sum(CASE WHEN anomaly OR failure OR confirmed THEN 0 ELSE 1 END) AS ok_count, "
        "sum(CASE WHEN anomaly AND NOT confirmed AND NOT failure THEN 1 ELSE 0 END) AS anomaly_count, "
        "sum(CASE WHEN confirmed AND NOT failure THEN 1 ELSE 0 END) AS confirmed_count, "
        "sum(CASE WHEN failure THEN 1 ELSE 0 END) AS failure_count"
    )
    if not axes:
        return f"SELECT {counts} FROM {TABLE}{clause}", params
    columns = ", ".join(
        f"{_PERIOD_START[dialect][grain]} AS {PERIOD}" if axis == "measurement_start_day" else axis
        for axis in axes
    )
    group = ", ".join(PERIOD if axis == "measurement_start_day" else axis for axis in axes)
    order = ", ".join(PERIOD if axis == "measurement_start_day" else _ORDER.get(axis, axis) for axis in axes)
    return f"SELECT {columns}, {counts} FROM {TABLE}{clause} GROUP BY {group} ORDER BY {order}", params
