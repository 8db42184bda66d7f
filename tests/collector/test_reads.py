"""The read routes: filters as people type them, dates out of range, repeated parameters, and the
aggregation counts against SQL written here, on the store's own DuckDB connection."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import csv
import io
import itertools
from pathlib import Path
from typing import Any

import orjson
import pytest

from collector.conftest import collector
from collector.test_app import OPEN, web
from reachwatch.collector.config import Settings
from reachwatch.collector.read_params import FILTERS
from reachwatch.store import clickhouse_server
from reachwatch.store.query import COUNTS
from reachwatch.store.readers import reader_for_store

LIST = "/api/v1/measurements"
AGGREGATION = "/api/v1/aggregation"
AXES = ("measurement_start_day", "probe_cc", "probe_asn", "domain", "category_code", "test_name", "input")


def _one(m: dict[str, Any], url: str, cc: str = "IT", asn: str = "AS30722") -> dict[str, Any]:
    out = copy.deepcopy(m)
    out.update(input=url, probe_cc=cc, probe_asn=asn)
    return out


@pytest.mark.parametrize(
    "when",
    ["0001-01-01T00:00:00+01:00", "0001-01-01 00:30+00:45", "9999-12-31T23:59:59-01:00"],
)
async def test_dates_out_of_range_in_utc_are_422(tmp_path: Path, when: str) -> None:
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (_, http):
        for route in (LIST, AGGREGATION):
            for name in ("since", "until"):
                r = await http.get(route, params={name: when})
                assert r.status_code == 422, (route, name, r.status_code, r.text)
                assert name in r.json()["error"] and "range" in r.json()["error"]


async def test_filters_are_normalised_like_the_stored_columns(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    base = web(real_measurements)[0]
    ms = [
        _one(base, "https://Bücher.DE./a"),
        _one(base, "http://xn--bcher-kva.de/b"),
        _one(base, "http://EXAMPLE.org./c", cc="DE", asn="AS3320"),
    ]
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (_, http):
        r = await http.post(LIST, content=b"\n".join(orjson.dumps(m) for m in ms))
        assert r.status_code == 200, r.text

        async def count(route: str = LIST, **params: str) -> int:
            r = await http.get(route, params=params)
            assert r.status_code == 200, (params, r.text)
            body = r.json()
            return body["metadata"]["count"] if route == LIST else body["result"]["measurement_count"]

        for spelling in ("xn--bcher-kva.de", "bücher.de", "BÜCHER.DE", "Bücher.de.", "XN--BCHER-KVA.DE."):
            assert await count(domain=spelling) == 2, spelling
            assert await count(AGGREGATION, domain=spelling) == 2, spelling
        for spelling in ("example.org", "EXAMPLE.ORG", "example.org."):
            assert await count(domain=spelling) == 1, spelling
        stored = (await http.get(LIST, params={"probe_cc": "DE"})).json()["results"]
        assert [row["domain"] for row in stored] == ["example.org"]
        for cc in ("IT", "it", "It"):
            assert await count(probe_cc=cc) == 2, cc
            assert await count(AGGREGATION, probe_cc=cc) == 2, cc
        for asn in ("AS3320", "as3320", "3320", "AS03320", "0003320"):
            assert await count(probe_asn=asn) == 1, asn
            assert await count(AGGREGATION, probe_asn=asn) == 1, asn
        bad_values = (
            {"probe_cc": "ITA"},
            {"probe_cc": "1T"},
            {"probe_asn": "ASN3320"},
            {"probe_asn": "AS"},
            {"probe_asn": "AS4294967296"},
            {"probe_asn": "9999999999"},
        )
        for bad in bad_values:
            for route in (LIST, AGGREGATION):
                r = await http.get(route, params=bad)
                assert r.status_code == 422 and r.json()["error"], (bad, route, r.text)
        # empty or blank: left out, as OONI's API reads probe_cc= (a form's empty field)
        for name in FILTERS:
            for value in ("", " ", "\t"):
                assert await count(**{name: value}) == 3, (name, value)
                assert await count(AGGREGATION, **{name: value}) == 3, (name, value)


async def test_a_parameter_given_twice_is_422(tmp_path: Path) -> None:
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (_, http):
        for route, name, values in (
            (AGGREGATION, "axis_x", ("probe_cc", "domain")),
            (AGGREGATION, "probe_cc", ("IT", "DE")),
            (LIST, "limit", ("1", "2")),
            (LIST, "domain", ("a.org", "b.org")),
        ):
            r = await http.get(route, params=[(name, v) for v in values])
            assert r.status_code == 422, (route, name, r.text)
            assert name in r.json()["error"]


async def test_oonis_comma_lists_on_both_stores(
    store_location: str, real_measurements: list[dict[str, Any]]
) -> None:
    """OONI's ``probe_cc=IT,DE``, ``probe_asn=AS1,2``, ``test_name=a,b`` and ``domain=a, b`` were a
    422: any one of the values now, each item in the spellings one value takes, on both stores."""
    base = web(real_measurements)[0]
    places = (("IT", "AS30722"), ("DE", "AS3320"), ("FR", "AS3215"), ("IT", "AS3269"))
    ms = [_one(base, f"https://Site{i}.example/", cc=cc, asn=asn) for i, (cc, asn) in enumerate(places)]
    other = next(m for m in real_measurements if m["test_name"] == "telegram")
    ms.append({**other, "probe_cc": "DE", "probe_asn": "AS3320"})
    async with collector(Settings(store=store_location, rate=0)) as (_, http):
        r = await http.post(LIST, content=b"\n".join(orjson.dumps(m) for m in ms))
        assert r.status_code == 200, r.text

        async def uids(route: str = LIST, **params: str) -> Any:
            r = await http.get(route, params=params)
            assert r.status_code == 200, (params, r.text)
            if route == AGGREGATION:
                return r.json()["result"]["measurement_count"]
            return {row["measurement_uid"] for row in r.json()["results"]}

        everything = await uids(limit="1000")
        by_cc = {cc: await uids(probe_cc=cc) for cc in ("IT", "DE", "FR")}
        assert [len(by_cc[cc]) for cc in ("IT", "DE", "FR")] == [2, 2, 1]
        for route in (LIST, AGGREGATION):
            for params, want in (
                ({"probe_cc": "IT,DE"}, by_cc["IT"] | by_cc["DE"]),
                ({"probe_cc": "it, de ,,IT"}, by_cc["IT"] | by_cc["DE"]),
                ({"probe_asn": "AS30722,3320"}, by_cc["DE"] | (await uids(probe_asn="AS30722"))),
                ({"probe_asn": "as3215,AS03269, 3215"}, by_cc["FR"] | (await uids(probe_asn="3269"))),
                ({"test_name": "telegram,web_connectivity"}, everything),
                ({"test_name": "telegram,ndt"}, await uids(test_name="telegram")),
                ({"domain": "site0.example, SITE1.example.,https://site2.example/x"}, None),
                ({"probe_cc": "IT,DE", "probe_asn": "AS3320,AS3269"}, None),
            ):
                got = await uids(route, **params)
                if want is None:  # the domains: three sites; the pair: DE's two and IT's AS3269
                    want_n = 3
                else:
                    want_n = len(want)
                    if route == LIST:
                        assert got == want, params
                assert (got if route == AGGREGATION else len(got)) == want_n, (route, params)
            for params, item in (
                ({"probe_asn": "AS1,xyz"}, "probe_asn: 'xyz' is not an ASN"),
                ({"probe_cc": "IT,ITA"}, "probe_cc: 'ITA' is not a two-letter country code"),
                ({"test_name": "telegram,Web"}, "test_name: 'Web' is not a test name"),
                ({"domain": "a.org, a b.org"}, "domain: 'a b.org' is not one host name"),
                ({"probe_asn": "1,AS4294967296"}, "probe_asn: AS4294967296 is past 4294967295"),
            ):
                r = await http.get(route, params=params)
                assert r.status_code == 422 and r.json()["error"].startswith(item), (route, params, r.text)

        # paging through a list filter: every row once, in order, as without pages
        whole = (await http.get(LIST, params={"probe_cc": "IT,DE", "limit": "100"})).json()
        seen: list[str] = []
        url: str | None = f"{LIST}?probe_cc=IT,DE&probe_asn=&limit=2"
        while url:
            page = (await http.get(url)).json()
            assert page["metadata"]["count"] == 4
            seen += [row["measurement_uid"] for row in page["results"]]
            url = page["metadata"]["next_url"]
        assert seen == [row["measurement_uid"] for row in whole["results"]]
        # limit=0: the count alone (OONI's API takes 0 to 1,000,000)
        meta = (await http.get(LIST, params={"probe_cc": "IT,DE", "limit": "0"})).json()
        assert (
            meta["results"] == [] and meta["metadata"]["count"] == 4 and meta["metadata"]["next_url"] is None
        )
        r = await http.get(LIST, params={"limit": "10000"})
        assert r.status_code == 200 and len(r.json()["results"]) == len(ms)


async def test_list_time_edges_are_oonis(
    store_location: str, real_measurements: list[dict[str, Any]]
) -> None:
    """OONI's list has the measurements after ``since``, up to and including ``until``; its
    aggregation from ``since`` to before ``until``. The list had since's and not until's."""
    base = web(real_measurements)[0]
    times = ("2024-03-01 00:00:00", "2024-03-01 12:00:00", "2024-03-02 00:00:00")
    ms = [{**_one(base, f"https://t{i}.example/"), "measurement_start_time": t} for i, t in enumerate(times)]
    async with collector(Settings(store=store_location, rate=0)) as (_, http):
        r = await http.post(LIST, content=b"\n".join(orjson.dumps(m) for m in ms))
        assert r.status_code == 200, r.text
        for params, listed, counted in (
            ({"since": "2024-03-01", "until": "2024-03-02"}, ["12:00", "00:00@02"], 2),
            ({"since": "2024-03-01T12:00:00Z", "until": "2024-03-01 12:00:01"}, [], 1),
            ({"since": "2024-03-01T11:59:59", "until": "2024-03-01T12:00:00"}, ["12:00"], 0),
            ({"since": "2024-02-29", "until": "2024-03-01"}, ["00:00@01"], 0),
            ({"since": "2024-03-01T13:00:00+01:00"}, ["00:00@02"], 2),
        ):
            rows = (await http.get(LIST, params=params)).json()["results"]
            got = [
                f"{t[11:16]}" + (f"@{t[8:10]}" if t.endswith("00:00:00Z") else "")
                for t in sorted(row["measurement_start_time"] for row in rows)
            ]
            assert got == listed, (params, got)
            body = (await http.get(AGGREGATION, params=params)).json()
            assert body["result"]["measurement_count"] == counted, (params, body)


async def test_aggregation_by_test_name_and_input(
    store_location: str, real_measurements: list[dict[str, Any]]
) -> None:
    """OONI's axes test_name and input (a 422 before); a group without an input has no ``input``
    key, as OONI's answer leaves out a null; OONI's blocking_type is refused by name."""
    ms = [*web(real_measurements)[:2], *(m for m in real_measurements if not m.get("input"))][:5]
    async with collector(Settings(store=store_location, rate=0)) as (_, http):
        r = await http.post(LIST, content=b"\n".join(orjson.dumps(m) for m in ms))
        assert r.status_code == 200, r.text
        rows = (await http.get(LIST, params={"limit": "100"})).json()["results"]
        by_test: dict[str, int] = {}
        for row in rows:
            by_test[row["test_name"]] = by_test.get(row["test_name"], 0) + 1
        result = (await http.get(AGGREGATION, params={"axis_x": "test_name"})).json()["result"]
        assert {g["test_name"]: g["measurement_count"] for g in result} == by_test
        assert [g["test_name"] for g in result] == sorted(by_test)
        result = (await http.get(AGGREGATION, params={"axis_x": "input", "axis_y": "test_name"})).json()[
            "result"
        ]
        with_input = sorted((row["input"], row["test_name"]) for row in rows if row["input"])
        assert [(g["input"], g["test_name"]) for g in result if "input" in g] == with_input
        assert (
            sum(g["measurement_count"] for g in result if "input" not in g) == len(rows) - len(with_input) > 0
        )
        csv_lines = (
            await http.get(AGGREGATION, params={"axis_x": "input", "format": "csv"})
        ).text.splitlines()
        assert csv_lines[0].startswith("input,measurement_count") and csv_lines[-1].startswith(",")
        r = await http.get(AGGREGATION, params={"axis_x": "blocking_type"})
        assert r.status_code == 422 and "blocking=" in r.json()["error"], r.text


def test_the_spec_documents_the_list_forms(tmp_path: Path) -> None:
    """OpenAPI says the comma lists, the empty values and the limit this collector takes."""
    import re

    from reachwatch.collector.app import create_app

    spec = create_app(Settings(store=str(tmp_path / "m.duckdb"))).openapi()
    for path in (LIST, AGGREGATION):
        params = {p["name"]: p for p in spec["paths"][path]["get"]["parameters"]}
        for name, value in (("probe_cc", "IT, de,"), ("probe_asn", "AS1,2"), ("test_name", "a_b,c")):
            schema = params[name]["schema"]  # the exact pattern, beside anyOf's string and null
            assert re.fullmatch(schema["pattern"], value) and "commas" in params[name]["description"], name
        for name in ("since", "until"):
            assert re.fullmatch(params[name]["schema"]["pattern"], "")
        assert "commas" in params["domain"]["description"]
    params = {p["name"]: p for p in spec["paths"][LIST]["get"]["parameters"]}
    assert params["limit"]["schema"]["maximum"] == 10000 and params["limit"]["schema"]["minimum"] == 0
    assert "after it" in params["since"]["description"] and "it included" in params["until"]["description"]
    params = {p["name"]: p for p in spec["paths"][AGGREGATION]["get"]["parameters"]}
    assert {"test_name", "input"} <= set(params["axis_x"]["schema"]["enum"])


async def test_an_unknown_parameter_is_422_not_ignored(tmp_path: Path) -> None:
    """A misspelt filter must not silently answer for every measurement."""
    async with collector(Settings(store=str(tmp_path / "m.duckdb"))) as (_, http):
        for path, query in (
            ("/api/v1/measurements", "cc=PK"),
            ("/api/v1/aggregation", "blocking=dns"),
            ("/api/v1/aggregation", "anomaly=true"),
        ):
            r = await http.get(f"{path}?{query}")
            name = query.split("=")[0]
            assert r.status_code == 422 and f"unknown query parameter '{name}'" in r.json()["error"], r.text
        assert (await http.get("/api/v1/aggregation?probe_cc=PK&axis_x=probe_asn")).status_code == 200


async def test_oonis_filters_not_stored_are_refused_by_name(tmp_path: Path) -> None:
    """OONI's list takes software_version, test_version, engine_version and ooni_run_link_id (its
    aggregation ooni_run_link_id): they are not columns here, so they are refused as unsupported
    (not "unknown", never ignored); empty, they are left out, as every filter."""
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (_, http):
        for route, name in (
            (LIST, "software_version"),
            (LIST, "test_version"),
            (LIST, "engine_version"),
            (LIST, "ooni_run_link_id"),
            (AGGREGATION, "ooni_run_link_id"),
        ):
            r = await http.get(route, params={name: "3.1.0,3.2.0"})
            error = r.json()["error"]
            assert r.status_code == 422 and error.startswith(f"{name}: OONI's filter, not supported"), r.text
            assert "unknown" not in error and "leave the parameter out" in error
            assert (await http.get(route, params={name: ""})).status_code == 200, (route, name)
        for name in ("software_version", "test_version", "engine_version"):
            r = await http.get(AGGREGATION, params={name: "1"})  # not OONI's aggregation's either
            assert r.status_code == 422 and "unknown query parameter" in r.json()["error"], r.text


async def test_bad_parameters_answer_an_error_message(tmp_path: Path) -> None:
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (_, http):
        for route, params in (
            (LIST, {"limit": "-1"}),
            (LIST, {"limit": "1.5"}),
            (LIST, {"offset": "99999999999999999999999"}),
            (LIST, {"since": "yesterday"}),
        ):
            r = await http.get(route, params=params)
            assert r.status_code == 422, (route, params, r.text)
            body = r.json()
            name = next(iter(params))
            assert name in body["error"] and body["detail"], body
        for route, params, says in (
            (AGGREGATION, {"axis_x": "blocking_type"}, "axis_x: blocking_type is OONI's axis, not supported"),
            (AGGREGATION, {"axis_y": "probe_ip"}, "axis_y: 'probe_ip' is not an axis: one of"),
            (LIST, {"limit": "10001"}, "limit: at most 10000 rows a page"),
            (LIST, {"limit": "1000000"}, "metadata.next_url"),
        ):
            r = await http.get(route, params=params)
            assert r.status_code == 422 and says in r.json()["error"], (params, r.text)


async def test_aggregation_matches_sql_for_every_pair_of_axes(
    tmp_path: Path, real_measurements: list[dict[str, Any]], small_measurements: list[dict[str, Any]]
) -> None:
    ms = [*real_measurements, *small_measurements]
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (app, http):
        r = await http.post(LIST, content=b"\n".join(orjson.dumps(m) for m in ms))
        assert r.status_code == 200, r.text
        await app.state.ingestor.settled()
        reader = reader_for_store(app.state.store)
        counts = (
            "count(*), count(*) FILTER (WHERE NOT (anomaly OR failure OR confirmed)), "
            "count(*) FILTER (WHERE anomaly AND NOT confirmed AND NOT failure), "
            "count(*) FILTER (WHERE confirmed AND NOT failure), count(*) FILTER (WHERE failure)"
        )
        names = ("measurement_count", "ok_count", "anomaly_count", "confirmed_count", "failure_count")
        combos = [(), *((a,) for a in AXES), *itertools.permutations(AXES, 2)]

        def axis_value(axis: str, v: Any) -> Any:
            if v is None:
                return None
            return int(v[2:]) if axis == "probe_asn" else str(v)  # OONI answers the ASN's number

        for combo in combos:
            group = ", ".join(combo)
            sql = f"SELECT {group + ', ' if combo else ''}{counts} FROM measurements"
            rows = reader.rows(sql + (f" GROUP BY {group}" if combo else ""))
            expected = {
                tuple(axis_value(a, v) for a, v in zip(combo, row, strict=False)): tuple(row[len(combo) :])
                for row in rows
            }
            params = dict(zip(("axis_x", "axis_y"), combo, strict=False))
            body = (await http.get(AGGREGATION, params=params)).json()
            assert body["dimension_count"] == len(combo)
            result = body["result"] if combo else [body["result"]]
            # as OONI's, a group without a value (no category, no input) has no key for that axis
            got = {tuple(r.get(a) for a in combo): tuple(r[n] for n in names) for r in result}
            assert got == expected, combo
            assert all(set(r) == {*(a for a in combo if r.get(a) is not None), *names} for r in result)
            assert any(None in key for key in got) == any(a in ("category_code", "input") for a in combo)


async def test_blocking_filter_values(tmp_path: Path, small_measurements: list[dict[str, Any]]) -> None:
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (app, http):
        r = await http.post(LIST, content=b"\n".join(orjson.dumps(m) for m in small_measurements))
        assert r.status_code == 200, r.text
        await app.state.ingestor.settled()
        reader = reader_for_store(app.state.store)
        expected = {
            "true": "anomaly",
            "null": "blocking IS NULL",
            **{v: f"blocking = '{v}'" for v in ("false", "dns", "tcp_ip", "http-failure", "http-diff")},
        }
        seen = 0
        for value, condition in expected.items():
            (want,) = reader.rows(f"SELECT count(*) FROM measurements WHERE {condition}")[0]
            seen += want
            for spelling in (value, value.upper(), f" {value.capitalize()} "):
                body = (await http.get(LIST, params={"blocking": spelling, "limit": 1000})).json()
                assert body["metadata"]["count"] == want, (spelling, body)
        assert seen >= len(small_measurements)  # every row is under some value ('true' overlaps)
        for garbage in ("garbage", "anomaly", "dns,tcp_ip", "1"):
            r = await http.get(LIST, params={"blocking": garbage})
            assert r.status_code == 422, (garbage, r.text)
            assert "blocking" in r.json()["error"] and "http-diff" in r.json()["error"]


async def test_test_name_filter(tmp_path: Path, real_measurements: list[dict[str, Any]]) -> None:
    """OONI's list and aggregation APIs take ``test_name``; ignored, it counted every test's
    measurements where a client asked for one test's."""
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (app, http):
        r = await http.post(LIST, content=b"\n".join(orjson.dumps(m) for m in real_measurements))
        assert r.status_code == 200, r.text
        reader = reader_for_store(app.state.store)
        # from a thread, as the dashboard reads (what the journal holds is stored first)
        names = dict(
            await asyncio.to_thread(
                reader.rows, "SELECT test_name, count(*) FROM measurements GROUP BY test_name"
            )
        )
        assert len(names) > 3 and "web_connectivity" in names and "telegram" in names
        for name, want in names.items():
            listed = (await http.get(LIST, params={"test_name": name, "limit": 1000})).json()
            assert listed["metadata"]["count"] == want and {r["test_name"] for r in listed["results"]} == {
                name
            }
            agg = (await http.get(AGGREGATION, params={"test_name": name, "axis_x": "probe_cc"})).json()
            assert sum(r["measurement_count"] for r in agg["result"]) == want
        assert (await http.get(LIST, params={"test_name": "nope"})).json()["metadata"]["count"] == 0
        for bad in ("Web Connectivity", "web-connectivity", "web_connectivity,Web-Connectivity"):
            r = await http.get(LIST, params={"test_name": bad})
            assert r.status_code == 422 and "test_name" in r.json()["error"], (bad, r.text)


async def test_a_domain_of_dots_or_a_list_and_since_after_until_are_422(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    """``domain=...`` is empty once normalised and used to list every measurement without a URL
    (tor, signal, ndt...); ``since`` after ``until`` answered an empty page, as if nothing had
    been measured then."""
    ms = [m for m in real_measurements if not m.get("input")][:3] + web(real_measurements)[:1]
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (_, http):
        r = await http.post(LIST, content=b"\n".join(orjson.dumps(m) for m in ms))
        assert r.status_code == 200, r.text
        for route in (LIST, AGGREGATION):
            for params in (
                {"domain": "..."},
                {"domain": "."},
                {"domain": "a.org,..."},
                {"domain": "https:///"},
            ):
                r = await http.get(route, params=params)
                assert r.status_code == 422 and "names no host" in r.json()["error"], (route, params, r.text)
            for host in ("a.example b.example", "archive.org,a@b.example", "x.org, a/b"):
                r = await http.get(route, params={"domain": host})
                assert r.status_code == 422 and "not one host name" in r.json()["error"], (
                    route,
                    host,
                    r.text,
                )
            for since, until in (("2024-01-02", "2024-01-01"), ("2024-01-01T10:00Z", "2024-01-01 10:00")):
                r = await http.get(route, params={"since": since, "until": until})
                assert r.status_code == 422 and "since must be before until" in r.json()["error"], r.text
            r = await http.get(route, params={"since": "2000-01-01", "until": "2100-01-01"})
            assert r.status_code == 200, r.text


async def test_times_at_the_ends_of_what_both_stores_hold(
    store_location: str, real_measurements: list[dict[str, Any]]
) -> None:
    """ClickHouse 18.16's DateTime holds 1970 to 2105 and wraps past them: a measurement from 1900
    or 2200 was stored as 0000-00-00 (and every page listing it was a 500), one from year 1 was a
    503 retried forever, and since=9999-12-31 matched everything, since=0001-01-01 was a 500.
    Out of range (the epoch's day too, which 18.16 writes as 0000-00-00) is now a 422 on both
    stores; since/until anywhere in the calendar mean the same on both."""
    base = web(real_measurements)[0]
    edge = []
    for i, when in enumerate(("1970-01-02 00:00:00", "2105-12-31 23:59:59", "2024-02-12 20:00:00")):
        edge.append({**_one(base, f"https://edge{i}.example/"), "measurement_start_time": when})
    async with collector(Settings(store=store_location, rate=0)) as (_, http):
        r = await http.post(LIST, content=b"\n".join(orjson.dumps(m) for m in edge))
        assert r.status_code == 200, r.text
        for when in (
            "1900-01-01 00:00:00",
            "1969-12-31 23:59:59",
            "2106-01-01 00:00:00",
            "0001-01-01 00:00:00",
        ):
            m = {**_one(base, "https://out.example/"), "measurement_start_time": when}
            r = await http.post(LIST, content=orjson.dumps(m))
            assert (
                r.status_code == 422 and "outside 1970-01-02 to 2105-12-31" in r.json()["errors"][0]["error"]
            ), (
                when,
                r.text,
            )
        listed = (await http.get(LIST)).json()
        assert sorted(row["measurement_start_time"] for row in listed["results"]) == [
            "1970-01-02T00:00:00Z",
            "2024-02-12T20:00:00Z",
            "2105-12-31T23:59:59Z",
        ]
        days = (await http.get(AGGREGATION, params={"axis_x": "measurement_start_day"})).json()["result"]
        assert [d["measurement_start_day"] for d in days] == ["1970-01-02", "2024-02-12", "2105-12-31"]
        for params, expected in (
            ({"since": "0001-01-01"}, 3),
            ({"until": "0001-01-01T00:00:00Z"}, 0),
            ({"since": "9999-12-31"}, 0),
            ({"until": "9999-12-31"}, 3),
            ({"since": "1900-01-01", "until": "2200-01-01"}, 3),
            # OONI's list: after since, up to and including until (the aggregation: from since,
            # until excluded, as OONI's)
            ({"since": "1970-01-02 00:00:01", "until": "2105-12-31 23:59:59"}, (2, 1)),
            ({"since": "1970-01-02 00:00:00", "until": "2105-12-31 23:59:59"}, (2, 2)),
            ({"since": "1970-01-01 23:59:59", "until": "2105-12-31 23:59:58"}, (2, 2)),
            ({"since": "1970-01-01 23:59:59.5", "until": "2105-12-31 23:59:59.5"}, (3, 3)),
            ({"since": "1970-01-02 00:00:00.5", "until": "2105-12-31 23:59:58.5"}, (1, 1)),
            ({"since": "2105-12-31 23:59:59"}, (0, 1)),
            ({"until": "1970-01-02"}, (1, 0)),
        ):
            for route in (LIST, AGGREGATION):
                r = await http.get(route, params=params)
                assert r.status_code == 200, (params, r.text)
                body = r.json()
                got = body["metadata"]["count"] if route == LIST else body["result"]["measurement_count"]
                want = expected if isinstance(expected, int) else expected[route == AGGREGATION]
                assert got == want, (route, params)


@pytest.mark.clickhouse
async def test_reads_while_clickhouse_is_down_are_503(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    """With its ClickHouse stopped, a write was a 503 to retry but every read (a measurement, the
    list, the aggregation) and the admin routes were a 500 "internal error"."""
    if clickhouse_server.binary() is None:
        pytest.skip("clickhouse-server is not installed: ClickHouse tests skipped")
    m = web(real_measurements)[0]
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(clickhouse_server.running(tmp_path / "clickhouse"))
        settings = Settings(store=f"{url}/down", rate=0, admin_token="t0ken")
        async with collector(settings) as (_, http):
            uid = (await http.post(LIST, content=orjson.dumps(m))).json()["measurement_uids"][0]
            assert (await http.get(f"/api/v1/measurement/{uid}")).status_code == 200
            stack.close()  # the server is killed
            auth = {"authorization": "Bearer t0ken"}
            for method, route in (
                ("GET", f"/api/v1/measurement/{uid}"),
                ("GET", LIST),
                ("GET", AGGREGATION),
                ("DELETE", f"/api/v1/measurement/{uid}"),
                ("POST", "/api/v1/admin/reanalyse"),
            ):
                r = await http.request(method, route, headers=auth)
                assert r.status_code == 503, (route, r.status_code, r.text)
                assert "storage error" in r.json()["error"] and r.headers["retry-after"], route


async def test_a_read_right_after_the_acknowledgement_counts_the_verdicts(
    store_location: str, real_measurements: list[dict[str, Any]]
) -> None:
    """The verdict is computed after the 2xx (~0.3 s later): a client that posted and then at once
    asked for the aggregation saw every measurement as a failure and none as ok. A read while
    ingest has nothing in hand now waits (at most a second) for those verdicts."""
    ms = web(real_measurements)
    async with collector(Settings(store=store_location, rate=0)) as (_, http):
        r = await http.post(LIST, content=b"\n".join(orjson.dumps(m) for m in ms))
        assert r.status_code == 200, r.text
        counts = (await http.get(AGGREGATION)).json()["result"]
        rows = (await http.get(LIST, params={"limit": 1000})).json()["results"]
    assert counts["measurement_count"] == len(ms)
    assert all(row["analysed"] for row in rows)
    assert counts["ok_count"] + counts["anomaly_count"] > 0
    assert counts["failure_count"] == sum(row["failure"] for row in rows) < len(ms)


def test_the_specs_since_and_until_are_exactly_the_dates_taken() -> None:
    """``since=0000-01-01`` or Feb 30 matched the pattern OpenAPI gave and were 422s: schemathesis's
    positive-data check failed on them. Every month and day of years at the calendar's edges."""
    import itertools
    import re

    from reachwatch.collector.http import ApiError
    from reachwatch.collector.read_params import DATE, DATE_EXACT, DATE_EXACT_OR_EMPTY, DATE_OR_EMPTY, time_of

    def taken(value: str) -> bool:
        try:
            time_of(value, "since")
        except ApiError:
            return False
        return True

    exact, loose = re.compile(DATE_EXACT).fullmatch, re.compile(DATE).fullmatch
    for year, month, day in itertools.product(
        (0, 1, 4, 100, 400, 1900, 2000, 2023, 2024, 9999), range(14), range(33)
    ):
        for clock in ("", "T00:00", " 23:59:59.5Z", "T12:00+05:30"):
            value = f"{year:04d}-{month:02d}-{day:02d}{clock}"
            assert bool(exact(value)) == (bool(loose(value)) and taken(value)), value
    # empty or blank: left out (the route's _given), and said so in the spec
    for value, left_out in (("", True), (" \t", True), (" 2024-01-01", False), ("2024-01-01 ", False)):
        assert (
            bool(re.fullmatch(DATE_OR_EMPTY, value))
            == bool(re.fullmatch(DATE_EXACT_OR_EMPTY, value))
            == left_out
        )


def test_the_specs_blocking_values_are_exactly_those_taken() -> None:
    """``blocking`` was declared as any string of up to 32 characters: a schema-valid ``00...0`` was
    a 422 (schemathesis's positive-data check). The spec's pattern now says which values, in any
    case with blanks around them, and the route takes exactly those."""
    import re

    from reachwatch.collector.http import ApiError
    from reachwatch.collector.read_params import BLOCKING, BLOCKING_EXACT, blocking_of

    def taken(value: str) -> bool:
        try:
            blocking_of(value)
        except ApiError:
            return False
        return True

    for value in BLOCKING:
        for spelling in (
            value,
            value.upper(),
            f" \t{value.capitalize()}\n",
            value[:-1],
            f"x{value}",
            f"\x1c{value}",
        ):
            assert bool(re.fullmatch(BLOCKING_EXACT, spelling)) == taken(spelling), repr(spelling)
    for other in ("anomaly", "dns,tcp_ip", "1", "http_diff", "\ufefftrue"):
        assert not re.fullmatch(BLOCKING_EXACT, other) and not taken(other), repr(other)
    for empty in ("", " ", "\t\n"):  # left out, as every filter
        assert re.fullmatch(BLOCKING_EXACT, empty) and blocking_of(empty) is None, repr(empty)


async def test_aggregation_answers_the_asn_as_oonis_does(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    """OONI's aggregation gives probe_asn as a number (its column is UInt32): a client written for
    it (``f"AS{probe_asn}"``) got ``ASAS30722`` from the string this collector answered."""
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (_, http):
        r = await http.post(LIST, content=orjson.dumps(_one(real_measurements[0], "https://a.example/")))
        assert r.status_code == 200, r.text
        by = (await http.get(AGGREGATION, params={"axis_x": "probe_asn", "axis_y": "probe_cc"})).json()
        assert [(x["probe_asn"], x["probe_cc"]) for x in by["result"]] == [(30722, "IT")]
        listed = (await http.get(LIST, params={"probe_asn": "30722"})).json()["results"]
        assert [x["probe_asn"] for x in listed] == ["AS30722"]  # the list keeps OONI's "AS..." form


async def test_an_asn_has_one_form_in_the_columns_whatever_the_probe_wrote(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    """OONI's spec example says ``AS0001``: it was listed as AS0001, aggregated as 1 and found only
    by ``probe_asn=0001``; the aggregation by ASN was ordered as text (1, 137, 30722, 3269)."""
    base = web(real_measurements)[0]
    asns = ("AS0001", "AS3269", "AS30722", "AS137", "AS0")
    ms = [_one(base, f"https://{n}.example/", asn=asn) for n, asn in enumerate(asns)]
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (_, http):
        r = await http.post(LIST, content=b"\n".join(orjson.dumps(m) for m in ms))
        assert r.status_code == 200, r.text
        uid = r.json()["measurement_uids"][0]
        for spelling in ("AS1", "as1", "1", "AS0001", "0001"):
            listed = (await http.get(LIST, params={"probe_asn": spelling})).json()["results"]
            assert [x["probe_asn"] for x in listed] == ["AS1"], spelling
            by = (await http.get(AGGREGATION, params={"probe_asn": spelling})).json()["result"]
            assert by["measurement_count"] == 1, spelling
        stored = orjson.loads((await http.get(f"/api/v1/measurement/{uid}")).content)
        assert stored["probe_asn"] == "AS0001"  # the measurement as sent (no attribution here)
        by = (await http.get(AGGREGATION, params={"axis_x": "probe_asn"})).json()["result"]
        assert [x["probe_asn"] for x in by] == [0, 1, 137, 3269, 30722]
        by = (await http.get(AGGREGATION, params={"axis_x": "probe_cc", "axis_y": "probe_asn"})).json()[
            "result"
        ]
        assert [x["probe_asn"] for x in by] == [0, 1, 137, 3269, 30722]
        for route in (LIST, AGGREGATION):
            r = await http.get(route, params={"probe_asn": "AS4294967296"})
            assert r.status_code == 422, r.text
            assert r.json()["error"].startswith("probe_asn: AS4294967296 is past 4294967295"), r.text


def test_the_specs_asn_filter_is_exactly_what_is_taken() -> None:
    """One ASN or OONI's comma list of them, blanks around each item and empty items ignored."""
    import random
    import re

    from reachwatch.collector.http import ApiError
    from reachwatch.collector.read_params import ASN_QUERY_EXACT, filters_of

    def asns(value: str) -> Any:
        return filters_of(None, value, None, None, None, None, None, None, None).probe_asn

    def taken(value: str) -> bool:
        try:
            asns(value)
        except ApiError:
            return False
        return True

    numbers = [0, 1, 65535, 4294967294, 4294967295, 4294967296, 4300000000, 9999999999]
    numbers += random.Random(7).sample(range(10**10), 300)
    for n in numbers:
        for spelling in (f"AS{n}", f"as{n}", f"As{n}", str(n), f"{n:010d}", f"AS{n:010d}", f"AS{n:011d}"):
            for value in (spelling, f"AS1,{spelling}", f" {spelling} ,,", f"{spelling},x"):
                assert bool(re.fullmatch(ASN_QUERY_EXACT, value)) == taken(value), value
            if taken(spelling):
                assert asns(spelling) == (f"AS{n}",) and asns(f"AS7, {spelling}") == ("AS7", f"AS{n}")
    for other in ("AS", "ASN1", "-1", "AS 1", "AS1;AS2", "AS1,AS"):
        assert not re.fullmatch(ASN_QUERY_EXACT, other) and not taken(other), repr(other)
    for empty in ("", " ", ",", " , \n"):  # left out
        assert re.fullmatch(ASN_QUERY_EXACT, empty) and asns(empty) is None, repr(empty)


async def test_oonis_list_parameters(tmp_path: Path, real_measurements: list[dict[str, Any]]) -> None:
    """``anomaly``, ``confirmed``, ``failure``, ``report_id``, ``order_by`` and ``order`` as OONI's
    list takes them (the stores' own test checks the rows: tests/store/test_store.py)."""
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (app, http):
        rid = (await http.post("/report", json=OPEN)).json()["report_id"]
        m = web(real_measurements)[0]
        uid = (await http.post(f"/report/{rid}", json={"format": "json", "content": m})).json()[
            "measurement_uid"
        ]
        r = await http.post(LIST, content=b"\n".join(orjson.dumps(m) for m in real_measurements))
        assert r.status_code == 200, r.text
        await app.state.ingestor.settled()
        everything = (await http.get(LIST, params={"limit": 1000})).json()["results"]
        for flag in ("anomaly", "confirmed", "failure"):
            for value in ("true", "false"):
                got = (await http.get(LIST, params={flag: value, "limit": 1000})).json()["results"]
                assert [g["measurement_uid"] for g in got] == [
                    e["measurement_uid"] for e in everything if e[flag] is (value == "true")
                ], (flag, value)
        got = (await http.get(LIST, params={"report_id": rid})).json()["results"]
        assert [g["measurement_uid"] for g in got] == [uid]
        for order in ("asc", "DESC", "Asc"):
            got = (await http.get(LIST, params={"order_by": "input", "order": order, "limit": 1000})).json()
            inputs = [g["input"] for g in got["results"]]
            given = [i for i in inputs if i is not None]  # those without one last
            assert inputs == sorted(given, reverse=order == "DESC") + [None] * (len(inputs) - len(given))
            assert len(inputs) == len(everything) and len(given) < len(inputs)
        for bad in (
            {"order_by": "test_start_time"},
            {"order": "up"},
            {"anomaly": "maybe"},
            {"report_id": "x" * 257},
        ):
            r = await http.get(LIST, params=bad)
            assert r.status_code == 422 and next(iter(bad)) in r.text, (bad, r.text)


async def test_head_on_the_read_routes(tmp_path: Path, real_measurements: list[dict[str, Any]]) -> None:
    """HEAD answers the GET's status and headers without a body (it was a 405)."""
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (_, http):
        r = await http.post(LIST, content=orjson.dumps(web(real_measurements)[0]))
        uid = r.json()["measurement_uids"][0]
        for path, params in (
            (f"/api/v1/measurement/{uid}", {}),
            ("/api/v1/measurement/nope", {}),
            (LIST, {"probe_cc": "IT"}),
            (LIST, {"order_by": "nope"}),
            (AGGREGATION, {"axis_x": "probe_cc"}),
        ):
            got, head = await http.get(path, params=params), await http.head(path, params=params)
            assert (head.status_code, head.content) == (got.status_code, b""), path
            assert head.headers["content-type"] == got.headers["content-type"], path


async def test_aggregation_by_time_grain_and_as_csv(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    """OONI's ``time_grain`` (hours written as OONI writes them; hour only over a week at most,
    ``auto`` the hour then), ``format=CSV`` (any case) and ``download``: they were a 422."""
    base = web(real_measurements)[0]
    times = ["2026-03-07 23:10:00", "2026-03-08 00:10:00", "2026-03-08 00:50:00", "2026-04-01 12:00:00"]
    ms = []
    for i, when in enumerate(times):
        m = _one(base, f"https://site{i}.example/", cc=("IT", "DE")[i % 2])
        m["measurement_start_time"] = when
        ms.append(m)
    ms[0]["input"] = "https://=cmd.example/"  # a host a spreadsheet would read as a formula
    ms[1]["annotations"] = {"category_code": "\rX"}  # a lone CR: quoted, or it splits the row
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (_, http):
        r = await http.post(LIST, content=b"\n".join(orjson.dumps(m) for m in ms))
        assert r.status_code == 200, r.text

        async def days(**params: str) -> list[tuple[str, int]]:
            r = await http.get(AGGREGATION, params={"axis_x": "measurement_start_day", **params})
            assert r.status_code == 200, (params, r.text)
            return [(g["measurement_start_day"], g["measurement_count"]) for g in r.json()["result"]]

        week = {"since": "2026-03-07", "until": "2026-03-09"}
        hours = [("2026-03-07T23:00:00Z", 1), ("2026-03-08T00:00:00Z", 2)]
        assert await days(time_grain="hour", **week) == hours
        assert await days(time_grain="auto", **week) == await days(time_grain="HOUR", **week) == hours
        assert await days(time_grain="auto") == await days() == [
            ("2026-03-07", 1), ("2026-03-08", 2), ("2026-04-01", 1)
        ]  # fmt: skip
        assert await days(time_grain="week") == [("2026-03-01", 1), ("2026-03-08", 2), ("2026-03-29", 1)]
        assert await days(time_grain="month") == [("2026-03-01", 3), ("2026-04-01", 1)]
        assert await days(time_grain="year") == [("2026-01-01", 4)]
        for params in (
            {"time_grain": "hour"},
            {"time_grain": "hour", "since": "2026-03-01", "until": "2026-04-01"},
        ):
            r = await http.get(AGGREGATION, params={"axis_x": "measurement_start_day", **params})
            assert r.status_code == 422 and "7 days" in r.json()["error"], r.text
        r = await http.get(AGGREGATION, params={"time_grain": "minute"})
        assert r.status_code == 422 and "time_grain" in r.text

        r = await http.get(AGGREGATION, params={"axis_x": "domain", "axis_y": "probe_asn"})
        assert list(r.json()["result"][0]) == ["domain", "probe_asn", *COUNTS]  # on either store
        r = await http.get(AGGREGATION, params={"axis_x": "domain", "axis_y": "probe_asn", "format": "csv"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        assert "content-disposition" not in r.headers
        lines = r.text.splitlines()
        assert lines[0] == (
            "domain,probe_asn,measurement_count,ok_count,anomaly_count,confirmed_count,failure_count"
        )
        assert lines[1].startswith("'=cmd.example,30722,1,") and len(lines) == 5
        r = await http.get(AGGREGATION, params={"axis_x": "category_code", "format": "csv"})
        assert list(csv.reader(io.StringIO(r.text, newline=""))) == [
            ["category_code", *COUNTS], ["'\rX", "1", "1", "0", "0", "0"], ["", "3", "3", "0", "0", "0"]
        ]  # fmt: skip
        r = await http.get(AGGREGATION, params={"format": "CSV", "download": "true"})
        assert r.headers["content-disposition"] == "attachment; filename=reachwatch-aggregation.csv"
        assert r.text.splitlines()[1].startswith("4,")
        r = await http.get(AGGREGATION, params={"format": "Json", "download": "1"})
        assert r.json()["result"]["measurement_count"] == 4
        assert r.headers["content-disposition"].endswith("reachwatch-aggregation.json")
        r = await http.get(AGGREGATION, params={"format": "xml"})
        assert r.status_code == 422 and "format" in r.text
