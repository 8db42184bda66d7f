"""Cell states over SQL: same records as the Python path, same on DuckDB and ClickHouse."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import pytest

from reachwatch.aggregate import CellCounts, aggregate, decide_state
from reachwatch.aggregate.sql import (
    cell_sql,
    day_range,
    network_names,
    parse_keys,
    query_cells,
    unattributed_count,
)
from reachwatch.errors import UserError
from reachwatch.report.from_store import period_filters
from reachwatch.store.query import Filters
from reachwatch.store.readers import ClickHouseReader, DuckDBReader, open_reader
from reachwatch.store.schema import Row
from store.backends import clickhouse_url, store_location  # noqa: F401 - the session's ClickHouse server
from store.rows import fill, mixed_rows, row


def python_rows(rows: list[Row]) -> list[dict[str, Any]]:
    out = []
    for r in sorted(rows, key=lambda r: r.measurement_uid):
        if not r.domain:
            continue
        out.append(
            {
                "probe_cc": r.probe_cc,
                "probe_asn": r.probe_asn,
                "domain": r.domain,
                "day": r.measurement_start_day.isoformat(),
                "probe_id": r.probe_id_hash,
                "blocking": False if r.blocking == "false" else r.blocking,
                "accessible": r.accessible,
                "x_technique": r.x_technique,
                "confirmed": r.confirmed,
                "control_failure": r.failure,
                "measurement_uid": r.measurement_uid,
                "measurement_start_time": f"{r.measurement_start_time:%Y-%m-%d %H:%M:%S}",
            }
        )
    return out


def random_rows(seed: int, n: int = 400) -> list[Row]:
    rnd = random.Random(seed)
    kinds = [
        ("false", True, None),
        ("false", False, None),
        ("dns", False, "dns-hijack"),
        ("dns", False, "dns-nxdomain"),
        ("tcp_ip", False, "tcp-reset"),
        ("http-diff", False, "http-blockpage"),
        ("false", True, "throttled"),
        (None, None, None),
    ]
    rows = []
    for i in range(n):
        blocking, accessible, technique = rnd.choice(kinds)
        rows.append(
            row(
                100_000 + i,
                cc=rnd.choice(["PK", "IR"]),
                asn=rnd.choice(["AS1", "AS2", "AS3"]),
                domain=rnd.choice(["a.org", "b.org", "c.org"]),
                day=rnd.choice(["2018-07-25", "2018-07-26"]),
                probe=f"p{rnd.randrange(5)}",
                blocking=blocking,
                accessible=accessible,
                technique=technique,
                confirmed=technique == "http-blockpage" and rnd.random() < 0.3,
                failure=blocking is None or rnd.random() < 0.05,
            )
        )
    return rows


def records(cells: list[Any]) -> list[dict[str, Any]]:
    return sorted(
        (c.as_dict() for c in cells),
        key=lambda d: str([d.get(k) for k in ("probe_cc", "probe_asn", "domain", "day")]),
    )


@pytest.mark.parametrize("keys", ["probe_cc,probe_asn,domain,day", "probe_cc,domain", "day"])
@pytest.mark.parametrize("seed", [1, 2])
def test_sql_matches_python(tmp_path: Path, keys: str, seed: int) -> None:
    rows = mixed_rows() + random_rows(seed)
    path = str(tmp_path / "m.duckdb")
    fill(path, rows)
    by = parse_keys(keys)
    reader = DuckDBReader.open(path)
    try:
        assert records(query_cells(reader, by)) == records(aggregate(python_rows(rows), by))
    finally:
        reader.close()


def test_filters_select_days_and_places(tmp_path: Path) -> None:
    path = str(tmp_path / "m.duckdb")
    fill(path, mixed_rows())
    reader = DuckDBReader.open(path)
    import datetime as dt

    one_day = query_cells(reader, f=period_filters(dt.date(2018, 7, 26), dt.date(2018, 7, 26)))
    assert {c.as_dict()["day"] for c in one_day} == {"2018-07-26"}
    iran = query_cells(reader, f=period_filters(None, None, cc="IR", domain="d.org"))
    assert [(c.as_dict()["probe_asn"], c.state) for c in iran] == [("AS64503", "ok")]
    assert query_cells(reader, f=Filters(probe_cc="FR")) == []


@pytest.mark.clickhouse
def test_duckdb_and_clickhouse_give_identical_records(tmp_path: Path, clickhouse_url: str) -> None:  # noqa: F811
    rows = mixed_rows() + random_rows(3, 1000)
    path = str(tmp_path / "m.duckdb")
    url = f"{clickhouse_url}/aggsql"
    fill(path, rows)
    fill(url, rows)
    duck, ch = DuckDBReader.open(path), ClickHouseReader(url)
    try:
        for keys in (("probe_cc", "probe_asn", "domain", "day"), ("probe_asn",), ("domain", "day")):
            for f in (Filters(), period_filters(None, None, cc="PK")):
                d, c = records(query_cells(duck, keys, f)), records(query_cells(ch, keys, f))
                assert d == c and d
    finally:
        duck.close()
        ch.close()


def test_no_data_is_never_ok(tmp_path: Path) -> None:
    assert decide_state(CellCounts())[0] == "insufficient"
    rows = random_rows(7, 600)
    path = str(tmp_path / "m.duckdb")
    fill(path, rows)
    reader = DuckDBReader.open(path)
    for cell in query_cells(reader):
        c = cell.counts
        if c.n_judged <= 0 or (c.n_probes < 2 and cell.rule_id == "cell.ok"):
            assert cell.state != "ok", cell
    undecided = [row(i, domain="z.org", probe=f"p{i}", blocking=None, accessible=None) for i in range(3)]
    path2 = str(tmp_path / "u.duckdb")
    fill(path2, undecided)
    (cell,) = query_cells(DuckDBReader.open(path2))
    assert cell.state == "insufficient"


def test_clickhouse_sql_uses_old_functions_only() -> None:
    text = " ".join(s for s, _ in cell_sql(("probe_cc", "day"), Filters(), "clickhouse").values())
    assert "uniqExact(" in text and "LIMIT 5 BY" in text
    for modern in ("row_number", "OVER", "FILTER", "count_if", "list("):
        assert modern not in text


@pytest.mark.parametrize("bad", ["", "day,day", "probe_cc,isp", "measurement_start_day"])
def test_bad_keys_are_user_errors(bad: str) -> None:
    with pytest.raises(UserError):
        parse_keys(bad)


def test_measurements_the_collector_could_not_attribute_are_left_out(store_location: str) -> None:  # noqa: F811
    """An outside check (session 17): one measurement from an address in no database, claiming a
    network that does not block and naming it anew, made that network blocking (a DNS artefact)
    and renamed it in the published report. Cells, names and the period keep to attributed rows
    unless asked for the others."""
    rows = [row(n, probe=f"p{n % 2}", network="Net60") for n in range(1, 5)]
    planted = row(
        99, day="2018-07-20", blocking="dns", accessible=False, technique="dns-hijack",
        network="Zz Renamed Telecom", attributed=False,
    )  # fmt: skip
    fill(store_location, [*rows, planted])
    reader = open_reader(store_location)
    try:
        keys = ("probe_cc", "probe_asn", "domain")
        (cell,) = query_cells(reader, keys)
        assert (cell.state, cell.n_measurements) == ("ok", 4)
        assert network_names(reader) == {"AS64501": "Net60"}
        assert day_range(reader) == (dt.date(2018, 7, 25), dt.date(2018, 7, 25))
        assert unattributed_count(reader) == 1
        (cell,) = query_cells(reader, keys, unattributed=True)
        assert (cell.state, cell.n_measurements) == ("blocked", 5)
        assert network_names(reader, unattributed=True) == {"AS64501": "Zz Renamed Telecom"}
        assert day_range(reader, unattributed=True) == (dt.date(2018, 7, 20), dt.date(2018, 7, 25))
        # a filter that says which it wants is kept: the API's attributed=false
        (cell,) = query_cells(reader, keys, Filters(attributed=False))
        assert cell.n_measurements == 1
    finally:
        reader.close()
