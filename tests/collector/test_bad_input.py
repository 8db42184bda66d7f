"""Bad input gets a clear 4xx, never a 5xx, and nothing half-written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from collector.conftest import collector
from collector.test_app import OPEN, web
from reachwatch.collector.config import Settings
from reachwatch.store.schema import META_TABLE


@pytest.fixture
def good(real_measurements: list[dict[str, Any]]) -> dict[str, Any]:
    return web(real_measurements)[0]


def broken(good: dict[str, Any]) -> list[tuple[str, bytes]]:
    return [
        ("not json", b"{this is not json"),
        ("invalid utf-8", b'{"input": "\xff\xfe"}'),
        ("not an object", b"[1, 2, 3]"),
        ("missing keys", orjson.dumps({"input": "http://x.example/"})),
        ("wrong types", orjson.dumps({**good, "test_keys": "nope", "probe_asn": 64501})),
        ("bad cc", orjson.dumps({**good, "probe_cc": "Pakistan"})),
        ("asn past 32 bits", orjson.dumps({**good, "probe_asn": "AS4294967296"})),
        ("bad time", orjson.dumps({**good, "measurement_start_time": "2026-13-45 99:99:99"})),
        ("huge string", orjson.dumps({**good, "input": "http://x.example/" + "a" * 100_000})),
        ("deep nesting", b'{"a":' * 2000 + b"1" + b"}" * 2000),
        ("integer past 64 bits", orjson.dumps(good)[:-1] + b',"x_n":123456789012345678901234567890}'),
    ]


async def test_bad_batches_are_4xx_and_store_nothing(tmp_path: Path, good: dict[str, Any]) -> None:
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (_, http):
        for name, line in broken(good):
            body = orjson.dumps(good) + b"\n" + line
            r = await http.post("/api/v1/measurements", content=body)
            assert 400 <= r.status_code < 500, (name, r.status_code, r.text)
            assert r.json()["error"] and r.json()["errors"][0]["line"] == 2, name
        empty = await http.post("/api/v1/measurements", content=b"\n \n")
        assert empty.status_code == 400
        count = (await http.get("/api/v1/measurements")).json()["metadata"]["count"]
        assert count == 0, "a rejected batch must store nothing"


async def test_the_message_names_what_is_wrong(tmp_path: Path, good: dict[str, Any]) -> None:
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (_, http):
        for line, message in (
            (
                {**good, "input": "http://x.example/" + "a" * 5000},
                "input: String should have at most 4096 characters",
            ),
            ({**good, "input": ["http://x.example/"] * 5000}, "input: List should have at most 4096 items"),
            (
                {**good, "input": 5},
                "input: Input should be a valid string; input: Input should be a valid list",
            ),
        ):
            r = await http.post("/api/v1/measurements", content=orjson.dumps(line))
            assert r.status_code == 422 and message in r.json()["errors"][0]["error"], r.text
        big = orjson.dumps(good)[:-1] + b',"x_n":-9223372036854775809}'
        r = await http.post("/api/v1/measurements", content=orjson.dumps(good) + b"\n" + big)
        assert r.status_code == 400 and r.json()["errors"] == [
            {
                "line": 2,
                "status": 400,
                "error": "line 2: it holds an integer past 64 bits, which would be stored rounded (as a "
                "float): write it as a string (or as a float, if rounding it is meant)",
            }
        ]


async def test_an_asn_past_32_bits_is_a_422_on_every_write_route(
    tmp_path: Path, good: dict[str, Any]
) -> None:
    """AS4294967296 and AS9999999999 were stored; ASNs stop at 4294967295."""
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (_, http):
        rid = (await http.post("/report", json=OPEN)).json()["report_id"]
        for asn in ("AS4294967296", "AS9999999999"):
            said = f"probe_asn: {asn} is past 4294967295, the largest ASN"
            r = await http.post("/report", json={**OPEN, "probe_asn": asn})
            assert r.status_code == 422 and said in r.json()["error"], r.text
            r = await http.post(
                f"/report/{rid}", json={"format": "json", "content": {**good, "probe_asn": asn}}
            )
            assert r.status_code == 422 and r.json()["error"].startswith(f"content: {said}"), r.text
            r = await http.post("/api/v1/measurements", content=orjson.dumps({**good, "probe_asn": asn}))
            assert r.status_code == 422 and r.json()["errors"][0]["error"].startswith(f"line 1: {said}"), (
                r.text
            )
        assert (await http.get("/api/v1/measurements")).json()["metadata"]["count"] == 0
        r = await http.post("/report", json={**OPEN, "probe_asn": "AS4294967295"})
        assert r.status_code == 200 and "_4294967295_n1_" in r.json()["report_id"], r.text


async def test_bad_ooni_submissions(tmp_path: Path, good: dict[str, Any]) -> None:
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (_, http):
        assert (await http.post("/report", content=b"{")).status_code == 400
        assert (await http.post("/report", json={**OPEN, "format": "yaml"})).status_code == 422
        assert (await http.post("/report", json={**OPEN, "probe_asn": "64501"})).status_code == 422
        rid = (await http.post("/report", json=OPEN)).json()["report_id"]
        forged = rid[:-1] + ("1" if rid.endswith("0") else "0")  # another MAC (1 in 16 end in 0)
        unknown = await http.post(f"/report/{forged}", json={"format": "json", "content": good})
        assert unknown.status_code == 404 and "unknown report id" in unknown.json()["error"]
        assert (await http.post("/report/nonsense/close")).status_code == 404
        for _, line in broken(good):
            body = b'{"format": "json", "content": ' + line + b"}"
            r = await http.post(f"/report/{rid}", content=body)
            assert 400 <= r.status_code < 500, r.text
        assert (await http.post(f"/report/{rid}", json={"content": good})).status_code == 422
        assert (await http.get("/api/v1/measurement/nope")).status_code == 404
        assert (await http.get("/api/v1/measurements", params={"limit": 10001})).status_code == 422
        assert (await http.get("/api/v1/measurements", params={"since": "yesterday"})).status_code == 422
        assert (await http.get("/api/v1/measurements")).json()["metadata"]["count"] == 0


async def test_oversize_body_is_413(tmp_path: Path, good: dict[str, Any]) -> None:
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0, max_body=10_000)) as (_, http):
        body = orjson.dumps({**good, "test_keys": {"x": "a" * 20_000}})
        r = await http.post("/api/v1/measurements", content=body)
        assert r.status_code == 413 and "larger than 10000" in r.json()["error"]

        async def chunks():  # no content-length: the limit applies while streaming
            for _ in range(20):
                yield b"a" * 1000

        r = await http.post("/api/v1/measurements", content=chunks())
        assert r.status_code == 413


def _nested(good: dict[str, Any], depth: int) -> bytes:
    inner = depth - 2  # the measurement and test_keys are two of the levels
    return orjson.dumps(good).replace(
        b'"test_keys":{', b'"test_keys":{"x":' + b"[" * inner + b"]" * inner + b",", 1
    )


@pytest.mark.parametrize(("depth", "status"), [(254, 200), (300, 200), (1_030, 400)])
async def test_deep_nesting_is_stored_as_deep_as_json_is_read(
    tmp_path: Path, good: dict[str, Any], depth: int, status: int
) -> None:
    """A store's test_keys are its text made compact (collector/json_text.py), not written
    back by orjson: stored as deep as JSON is read anywhere here (1,024 levels, orjson.loads's
    limit too); deeper is a 400 that says so."""
    line = _nested(good, depth)
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (_, http):
        batch = await http.post("/api/v1/measurements", content=line)
        rid = (await http.post("/report", json=OPEN)).json()["report_id"]
        single = await http.post(f"/report/{rid}", content=b'{"format":"json","content":' + line + b"}")
        assert batch.status_code == single.status_code == status, (batch.text, single.text)
        if status == 200:
            uid = batch.json()["measurement_uids"][0]
            assert single.json()["measurement_uid"] == uid  # one measurement, one identity
            assert (await http.get(f"/api/v1/measurement/{uid}")).content.count(b"[") >= depth - 2
        else:
            assert "depth limit exceeded" in batch.json()["errors"][0]["error"]
            assert "depth limit exceeded" in single.json()["error"]


@pytest.mark.parametrize("depth", [254, 300])
async def test_deep_nesting_is_named_in_a_store_hashing_orjsons_form(
    tmp_path: Path, good: dict[str, Any], depth: int
) -> None:
    """A store made before session 10 hashes the form orjson writes back, which stops at 254
    levels: past them a 422 that says so, not orjson's "Recursion limit reached"."""
    db = tmp_path / "m.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute(f"CREATE TABLE {META_TABLE} (key VARCHAR PRIMARY KEY, value BLOB)")
        con.execute(f"INSERT INTO {META_TABLE} VALUES ('secret', ?), ('identity', ?)", [b"s" * 32, b"blake3"])
    line = _nested(good, depth)
    async with collector(Settings(store=str(db), rate=0)) as (_, http):
        batch = await http.post("/api/v1/measurements", content=line)
        rid = (await http.post("/report", json=OPEN)).json()["report_id"]
        single = await http.post(f"/report/{rid}", content=b'{"format":"json","content":' + line + b"}")
    if depth == 254:
        assert batch.status_code == 200 and single.status_code == 200, (batch.text, single.text)
        return
    assert (
        batch.status_code == 422 and "nested more than 254 levels deep" in batch.json()["errors"][0]["error"]
    )
    assert single.status_code == 422 and "nested more than 254 levels deep" in single.json()["error"]


async def test_no_such_route_and_wrong_method_have_an_error_message(tmp_path: Path) -> None:
    """Every 4xx body has an ``error`` (docs/collector.md); a 404 for an unknown path and a 405 had
    only Starlette's ``detail``."""
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (_, http):
        missing = await http.get("/api/v1/nothing-here")
        wrong = await http.put("/api/v1/measurements", content=b"{}")
        opened = await http.get("/report")
    assert missing.status_code == 404 and missing.json()["error"] == "Not Found"
    assert wrong.status_code == 405 and wrong.json()["error"] == "Method Not Allowed"
    # every method of the path (Starlette named only its first route's: POST, not GET)
    assert wrong.headers["allow"] == "GET, HEAD, POST"
    assert opened.headers["allow"] == "POST"
    assert opened.status_code == 405 and opened.json()["detail"] == "Method Not Allowed"


async def test_invalid_utf8_is_located(tmp_path: Path, good: dict[str, Any]) -> None:
    """orjson says "surrogates not allowed" at "line 1 column 1 (char 0)" wherever a bad byte is:
    the message names the byte and where it is, in the body or in the batch's line."""
    line = orjson.dumps({**good, "input": "http://x.example/"}).replace(b"x.example", b"x.\xffexample")
    at = line.index(b"\xff")
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (_, http):
        batch = await http.post("/api/v1/measurements", content=orjson.dumps(good) + b"\n" + line)
        error = batch.json()["errors"][0]
        assert error["line"] == 2, batch.text
        assert error["error"] == (
            f"line 2 is not valid UTF-8: byte 0xff at line 1 column {at + 1} (byte {at}); "
            "send JSON text encoded as UTF-8"
        )
        rid = (await http.post("/report", json=OPEN)).json()["report_id"]
        body = b'{"format": "json",\n "content": ' + line + b"}"
        r = await http.post(f"/report/{rid}", content=body)
        column = body.index(b"\xff") - body.index(b"\n")
        assert r.status_code == 400 and f"byte 0xff at line 2 column {column} " in r.json()["error"], r.text
        assert (await http.get("/api/v1/measurements")).json()["metadata"]["count"] == 0
