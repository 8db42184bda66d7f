from __future__ import annotations

import dataclasses
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


def test_several_values_are_any_of_them() -> None:
    """OONI's comma lists (``probe_cc=IT,DE``): ``IN (...)``, which ClickHouse 18.16 takes too."""
    clause, params = query.where(query.Filters(probe_cc=("IT", "DE"), probe_asn=("AS1",), test_name="ndt"))
    assert clause == " WHERE probe_cc IN (?, ?) AND probe_asn = ? AND test_name = ?"
    assert params == ["IT", "DE", "AS1", "ndt"]
    assert (
        render(clause, params)
        == " WHERE probe_cc IN ('IT', 'DE') AND probe_asn = 'AS1' AND test_name = 'ndt'"
    )
    with pytest.raises(ValueError):
        query.where(query.Filters(domain=()))


def test_the_windows_edges() -> None:
    """The reports' and the aggregation's window: since in, until out (the default); OONI's list's:
    after since, up to and including until. A fraction of a second is rounded the way that keeps
    the same rows on both stores."""
    since, until = dt.datetime(2026, 1, 1, 10, 0, 0, 500000), dt.datetime(2026, 1, 2, 10, 0, 0, 500000)
    clause, params = query.where(query.Filters(since=since, until=until))
    assert clause.count(">= ?") == 2 and "measurement_start_time < ?" in clause
    assert params[1::2] == [dt.datetime(2026, 1, 1, 10, 0, 1), dt.datetime(2026, 1, 2, 10, 0, 1)]
    ooni = query.Filters(since=since, until=until, since_included=False, until_included=True)
    clause, params = query.where(ooni)
    assert "measurement_start_time > ?" in clause and "measurement_start_time <= ?" in clause
    assert params[1::2] == [dt.datetime(2026, 1, 1, 10, 0, 0), dt.datetime(2026, 1, 2, 10, 0, 0)]
    # at the ends of what is stored: an excluded LATEST matches nothing, an included EARLIEST is kept
    latest = query.Filters(since=dt.datetime(2105, 12, 31, 23, 59, 59), since_included=False)
    assert query.where(latest) == (" WHERE 1 = 0", [])
    earliest = query.Filters(until=dt.datetime(1970, 1, 2), until_included=True)
    assert query.where(earliest)[0] == " WHERE measurement_start_day <= ? AND measurement_start_time <= ?"
    assert query.where(dataclasses.replace(earliest, until_included=False)) == (" WHERE 1 = 0", [])


def test_test_name_and_input_are_axes() -> None:
    sql, _ = query.aggregate_sql(query.Filters(), ["test_name", "input"], "clickhouse")
    assert sql.endswith(" GROUP BY test_name, input ORDER BY test_name, input")
