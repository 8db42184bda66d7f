from __future__ import annotations

import datetime as dt

import pytest

from reachwatch.store import query
from reachwatch.store.clickhouse_values import literal, render
from reachwatch.store.compression import compress, decompress
from reachwatch.store.schema import COLUMN_NAMES


def test_where_and_params() -> None:
    clause, params = query.where(query.Filters(probe_cc="PK", since=dt.datetime(2026, 1, 1), blocking="true"))
    # the day as well as the time: ClickHouse prunes the other days' partitions by it
    assert clause == (
        " WHERE probe_cc = ? AND measurement_start_day >= ? AND measurement_start_time >= ? AND anomaly = ?"
    )
    assert params == ["PK", dt.date(2026, 1, 1), dt.datetime(2026, 1, 1), True]
    assert query.where(query.Filters()) == ("", [])
    assert query.where(query.Filters(test_name="telegram")) == (" WHERE test_name = ?", ["telegram"])


def test_axes_are_checked() -> None:
    with pytest.raises(ValueError):
        query.aggregate_sql(query.Filters(), ["probe_ip; DROP TABLE measurements"], "duckdb")


def test_asns_are_grouped_by_column_and_ordered_by_number() -> None:
    sql, _ = query.aggregate_sql(query.Filters(), ["probe_cc", "probe_asn"], "clickhouse")
    assert sql.endswith(" GROUP BY probe_cc, probe_asn ORDER BY probe_cc, length(probe_asn), probe_asn")
    sql, _ = query.aggregate_sql(query.Filters(), ["domain"], "duckdb")
    assert sql.endswith(" GROUP BY domain ORDER BY domain")


def test_clickhouse_literals_escape() -> None:
    assert literal("it's \\ here") == "'it\\'s \\\\ here'"
    assert literal(None) == "NULL" and literal(True) == "1" and literal(7) == "7"
    assert literal(dt.datetime(2026, 1, 2, 3, 4, 5)) == "toDateTime('2026-01-02 03:04:05', 'UTC')"
    assert render("a = ? AND b = ?", ["x'", 1]) == "a = 'x\\'' AND b = 1"
    with pytest.raises(ValueError):
        render("a = ?", [])


def test_schema() -> None:
    assert "raw" in COLUMN_NAMES and "probe_ip" not in COLUMN_NAMES
    assert decompress(compress(b"x" * 1000)) == b"x" * 1000
    assert len(compress(b"x" * 1000)) < 100
