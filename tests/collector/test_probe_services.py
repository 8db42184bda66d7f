"""OONI's probe-services routes, as a real OONI probe (ooni/probe-cli) calls them: its request bodies
and headers replayed (Go's encoding/json: struct field order, ``null`` for an empty slice, ``<``,
``>`` and ``&`` written ``\\u003c``...), and the answers read as probe-cli's structs read them."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from collector.conftest import MINIMAL, OTHER, PROBE_V4, collector, live_server
from reachwatch.collector.config import Settings
from reachwatch.collector.ooni_protocol import valid_report_id
from reachwatch.collector.probe_services import CHECK_IN_TESTS
from reachwatch.collector.url_lists import UrlLists
from reachwatch.errors import UserError

#: what probe-cli's httpclientx and httpapi send with every call
GO_HEADERS = {
    "User-Agent": "miniooni/3.22.0 ooniprobe-engine/3.22.0",
    "Accept-Encoding": "gzip",
}
POST_HEADERS = {**GO_HEADERS, "Content-Type": "application/json", "Accept": "application/json"}
HEADER = "url,category_code,category_description,date_added,source,notes\n"


def go_json(value: Any) -> bytes:
    """JSON as Go's encoding/json writes it: HTML characters escaped inside strings."""
    return orjson.dumps(value).replace(b"<", b"\\u003c").replace(b">", b"\\u003e").replace(b"&", b"\\u0026")


def check_in_body(**over: Any) -> dict[str, Any]:
    """probe-cli's OOAPICheckInConfig, in its field order (``category_codes`` nil: ``null``)."""
    body: dict[str, Any] = {
        "charging": True,
        "on_wifi": True,
        "platform": "linux",
        "probe_asn": "AS64501",
        "probe_cc": "PK",
        "run_type": "manual",
        "software_name": "miniooni",
        "software_version": "3.22.0",
        "web_connectivity": {"category_codes": None},
    }
    body.update(over)
    return body


def measurement(report_id: str, url: str = "https://example.org/?a=1&b=<2>") -> dict[str, Any]:
    """model.Measurement as probe-cli marshals it (its field order)."""
    return {
        "annotations": {"architecture": "amd64", "engine_name": "ooniprobe-engine", "platform": "linux"},
        "data_format_version": "0.2.0",
        "input": url,
        "measurement_start_time": "2026-11-29 10:00:01",
        "probe_asn": "AS64501",
        "probe_cc": "PK",
        "probe_ip": "127.0.0.1",
        "probe_network_name": "Test Net",
        "report_id": report_id,
        "resolver_asn": "AS13335",
        "resolver_ip": "1.1.1.1",
        "resolver_network_name": "Cloudflare",
        "software_name": "miniooni",
        "software_version": "3.22.0",
        "test_keys": {"accessible": True, "blocking": False, "requests": []},
        "test_name": "web_connectivity",
        "test_runtime": 1.25,
        "test_start_time": "2026-11-29 10:00:00",
        "test_version": "0.5.28",
    }


def submission(m: dict[str, Any]) -> bytes:
    """OOAPISubmitMeasurementRequest: the measurement marshalled, then put in as a string."""
    return go_json({"format": "json", "content": go_json(m).decode()})


@pytest.fixture
def lists(tmp_path: Path) -> Path:
    d = tmp_path / "lists"
    d.mkdir()
    (d / "global.csv").write_text(
        HEADER
        + "https://www.bbc.com/,NEWS,News Media,2017-01-01,,\n"
        + "https://www.hrw.org/,HUMR,Human Rights Issues,2017-01-01,,\n"
        + "https://www.dawn.com/,NEWS,News Media,2017-01-01,,\n"
    )
    (d / "pk.csv").write_text(
        HEADER
        + "https://www.dawn.com/,NEWS,News Media,2017-01-01,,\n"
        + "https://pk.example/,POLR,Political Criticism,2017-01-01,,\n"
    )
    (d / "ir.csv").write_text(HEADER + "https://ir.example/,NEWS,News Media,2017-01-01,,\n")
    # the repository's legend: another header, not a list
    (d / "00-LEGEND-category_codes.csv").write_text("CODE,Category Code,Description\nNEWS,News,x\n")
    return d


def settings(tmp_path: Path, geo: tuple[Path, Path] | None = None, **over: Any) -> Settings:
    asn, country = geo if geo is not None else (None, None)
    return Settings(
        store=over.pop("store", str(tmp_path / "m.duckdb")), asn_db=asn, country_db=country, rate=0, **over
    )


async def test_test_helpers_is_empty_without_a_helper_and_names_it_when_given(tmp_path: Path) -> None:
    async with collector(settings(tmp_path)) as (_, http):
        r = await http.get("/api/v1/test-helpers", headers=GO_HEADERS)
        # probe-cli reads a map[string][]OOAPIService: {} is one (null would be refused as nil)
        assert r.status_code == 200 and r.json() == {}
        assert (await http.get("/api/v1/test-helpers?x=1")).status_code == 422
    th = "https://th.example.org"
    async with collector(settings(tmp_path, test_helper=th)) as (_, http):
        r = await http.get("/api/v1/test-helpers", headers=GO_HEADERS)
        assert r.json() == {"web-connectivity": [{"address": th, "type": "https"}]}


async def test_check_in_answers_oonis_shape_from_the_lists(
    tmp_path: Path, lists: Path, geo_dbs: tuple[Path, Path]
) -> None:
    """The probe claims another network: the answer is the one its address is on (as for a
    submission), the URLs are its country's then the global ones, each report id is accepted."""
    s = settings(tmp_path, geo_dbs, test_lists=(lists,), test_helper="https://th.example.org/")
    async with collector(s) as (app, http):
        body = go_json(check_in_body(probe_cc="IT", probe_asn="AS117"))
        r = await http.post("/api/v1/check-in", content=body, headers=POST_HEADERS)
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["v"] == 1 and got["probe_cc"] == "PK" and got["probe_asn"] == "AS64501"
        assert got["probe_network_name"] == "Test Net"
        assert got["utc_time"].endswith("Z") and len(got["utc_time"]) == 20
        assert got["conf"]["test_helpers"] == {
            "web-connectivity": [{"address": "https://th.example.org/", "type": "https"}]
        }
        wc = got["tests"]["web_connectivity"]
        assert wc["urls"] == [
            {"category_code": "NEWS", "country_code": "PK", "url": "https://www.dawn.com/"},
            {"category_code": "POLR", "country_code": "PK", "url": "https://pk.example/"},
            {"category_code": "NEWS", "country_code": "XX", "url": "https://www.bbc.com/"},
            {"category_code": "HUMR", "country_code": "XX", "url": "https://www.hrw.org/"},
        ]
        secret = app.state.ingestor.secret
        assert set(got["tests"]) == set(CHECK_IN_TESTS)
        for name, test in got["tests"].items():
            assert valid_report_id(secret, test["report_id"]), name
            assert test["report_id"].split("_")[1:4] == [name.replace("_", ""), "PK", "64501"]

        # categories (a list, or OONI's comma-separated string), any case
        for codes in (["news"], "NEWS, humr"):
            body = go_json(check_in_body(web_connectivity={"category_codes": codes}))
            urls = (await http.post("/api/v1/check-in", content=body, headers=POST_HEADERS)).json()
            got_codes = {u["category_code"] for u in urls["tests"]["web_connectivity"]["urls"]}
            assert got_codes == ({"NEWS"} if codes == ["news"] else {"NEWS", "HUMR"})


async def test_check_in_falls_back_to_the_claim_and_gives_no_urls_without_lists(tmp_path: Path) -> None:
    async with collector(settings(tmp_path)) as (_, http):
        r = await http.post("/api/v1/check-in", content=go_json(check_in_body(probe_asn="AS0117")))
        got = r.json()
        assert r.status_code == 200 and got["probe_cc"] == "PK" and got["probe_asn"] == "AS117"
        assert got["probe_network_name"] is None and got["conf"]["test_helpers"] == {}
        assert got["tests"]["web_connectivity"]["urls"] == []
        # an empty body is OONI's defaults: an unknown probe
        r = await http.post("/api/v1/check-in", json={})
        assert r.status_code == 200 and (r.json()["probe_cc"], r.json()["probe_asn"]) == ("ZZ", "AS0")


async def test_a_timed_run_gets_a_sample_of_the_list(tmp_path: Path) -> None:
    (tmp_path / "global.csv").write_text(
        HEADER + "".join(f"https://s{i}.example/,NEWS,News,2020-01-01,,\n" for i in range(150))
    )
    async with collector(settings(tmp_path, test_lists=(tmp_path / "global.csv",))) as (_, http):
        for charging, expected in ((True, 100), (False, 20)):
            body = go_json(check_in_body(run_type="timed", charging=charging))
            urls = (await http.post("/api/v1/check-in", content=body)).json()["tests"]["web_connectivity"][
                "urls"
            ]
            assert len(urls) == expected and len({u["url"] for u in urls}) == expected
        urls = (await http.post("/api/v1/check-in", content=go_json(check_in_body()))).json()
        assert len(urls["tests"]["web_connectivity"]["urls"]) == 150


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b"{", 400, "not valid JSON"),
        (b"\xff{}", 400, "not valid UTF-8"),
        (b"[]", 422, "valid dictionary"),
        (go_json(check_in_body(charging="yes")), 422, "charging"),
        (go_json(check_in_body(on_wifi=1)), 422, "on_wifi"),
        (go_json(check_in_body(probe_cc="P1")), 422, "probe_cc"),
        (go_json(check_in_body(probe_asn="64501")), 422, "probe_asn"),
        (go_json(check_in_body(probe_asn="AS99999999999")), 422, "probe_asn"),
        (go_json(check_in_body(run_type="x" * 100)), 422, "run_type"),
        (go_json(check_in_body(web_connectivity={"category_codes": ["N-W"]})), 422, "category_codes"),
        (go_json(check_in_body(web_connectivity={"category_codes": "NEWS,R3L"})), 422, "category_codes"),
        (go_json(check_in_body(web_connectivity={"category_codes": 5})), 422, "category_codes"),
        (go_json(check_in_body(web_connectivity=[])), 422, "web_connectivity"),
        (go_json(check_in_body(software_name="a\nb")), 422, "software_name"),
    ],
)
async def test_bad_check_ins_are_4xx_saying_what(tmp_path: Path, body: bytes, status: int, says: str) -> None:
    async with collector(settings(tmp_path)) as (_, http):
        r = await http.post("/api/v1/check-in", content=body, headers=POST_HEADERS)
        assert r.status_code == status and says in r.json()["error"], r.text


async def test_test_list_urls(tmp_path: Path, lists: Path) -> None:
    async with collector(settings(tmp_path, test_lists=(lists,))) as (_, http):
        r = await http.get("/api/v1/test-list/urls", params={"country_code": "ir"}, headers=GO_HEADERS)
        got = r.json()
        assert got["metadata"] == {"count": 4, "current_page": -1, "limit": -1, "next_url": "", "pages": 1}
        assert [u["url"] for u in got["results"]] == [
            "https://ir.example/",
            "https://www.bbc.com/",
            "https://www.hrw.org/",
            "https://www.dawn.com/",
        ]
        r = await http.get(
            "/api/v1/test-list/urls", params={"probe_cc": "PK", "category_codes": "NEWS", "limit": 2}
        )
        assert [u["url"] for u in r.json()["results"]] == ["https://www.dawn.com/", "https://www.bbc.com/"]
        no_country = (await http.get("/api/v1/test-list/urls")).json()
        assert {u["country_code"] for u in no_country["results"]} == {"XX"}
        for params in (
            {"limit": "-2"},
            {"limit": "x"},
            {"country_code": "PAK"},
            {"category_codes": "N W"},
            {"cc": "PK"},
        ):
            r = await http.get("/api/v1/test-list/urls", params=params)
            assert r.status_code == 422 and r.json()["error"], params


def test_lists_that_cannot_be_read_are_errors_naming_them(tmp_path: Path) -> None:
    (tmp_path / "pakistan.csv").write_text(HEADER)
    with pytest.raises(UserError, match="name says its country"):
        UrlLists.load([tmp_path / "pakistan.csv"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no test list"):
        UrlLists.load([tmp_path / "empty"])
    (tmp_path / "de.csv").write_text(HEADER + "not a url,NEWS,x,y,,\n")
    with pytest.raises(UserError) as err:
        UrlLists.load([tmp_path / "de.csv"])
    assert "de.csv:2" in str(err.value.where)


async def test_submit_measurement_is_the_report_routes_ingest(
    store_location: str, tmp_path: Path, geo_dbs: tuple[Path, Path]
) -> None:
    """A check-in's report id, the measurement as a string: stored attributed and scrubbed, and the
    same measurement sent by POST /report/{id} (or with its content an object) is the same uid."""
    s = settings(tmp_path, geo_dbs, store=store_location)
    async with collector(s) as (_, http):
        checked = (await http.post("/api/v1/check-in", content=go_json(check_in_body()))).json()
        rid = checked["tests"]["web_connectivity"]["report_id"]
        m = measurement(rid)
        m["test_keys"]["client_resolver"] = PROBE_V4  # the submitter's address: scrubbed
        r = await http.post("/api/v1/submit_measurement", content=submission(m), headers=POST_HEADERS)
        assert r.status_code == 200, r.text
        uid = r.json()["measurement_uid"]
        assert set(r.json()) == {"measurement_uid"} and "_PK_webconnectivity_" in uid
        again = await http.post(f"/report/{rid}", json={"format": "json", "content": m})
        assert again.json() == {"measurement_uid": uid}
        as_object = await http.post("/api/v1/submit_measurement", json={"format": "json", "content": m})
        assert as_object.json() == {"measurement_uid": uid}
        stored = (await http.get(f"/api/v1/measurement/{uid}")).text
        assert PROBE_V4 not in stored and '"report_id":"' + rid in stored
        assert orjson.loads(stored)["input"] == "https://example.org/?a=1&b=<2>"


@pytest.mark.parametrize(
    ("make", "status", "says"),
    [
        (lambda rid: b'{"format": "json", "content": "{"}', 400, "content is not valid JSON"),
        (lambda rid: b'{"format": "json", "content": ', 400, "request body is not valid JSON"),
        (lambda rid: b'{"format": "json", "content": "\\ud800"}', 400, ""),
        (lambda rid: go_json({"format": "json", "content": 5}), 422, "a JSON object"),
        (lambda rid: go_json({"format": "json", "content": "[1]"}), 422, "a JSON object"),
        (lambda rid: go_json({"format": "yaml", "content": "{}"}), 422, "expected"),
        (lambda rid: go_json({"content": "{}"}), 422, "expected"),
        (lambda rid: b"[]", 422, "expected"),
        (lambda rid: submission({**measurement(rid), "report_id": ""}), 422, "has no report_id"),
        (
            lambda rid: submission({k: v for k, v in measurement(rid).items() if k != "report_id"}),
            422,
            "no report_id",
        ),
        (lambda rid: submission({**measurement(rid), "report_id": 7}), 422, "no report_id"),
        # the MAC's last digit changed (a rid ending in 0 made the same rid: 1 run in 16 failed)
        (
            lambda rid: submission(measurement(rid[:-1] + "01"[rid[-1] == "0"])),
            422,
            "not opened by this collector",
        ),
        (lambda rid: submission({**measurement(rid), "probe_cc": "Pakistan"}), 422, "probe_cc"),
        (lambda rid: submission({**measurement(rid), "test_keys": []}), 422, "test_keys"),
        (
            lambda rid: submission({**measurement(rid), "measurement_start_time": 5}),
            422,
            "measurement_start_time",
        ),
    ],
)
async def test_bad_submissions_are_4xx_saying_what(tmp_path: Path, make: Any, status: int, says: str) -> None:
    async with collector(settings(tmp_path)) as (_, http):
        rid = (await http.post("/api/v1/check-in", json={"probe_cc": "PK", "probe_asn": "AS64501"})).json()[
            "tests"
        ]["web_connectivity"]["report_id"]
        r = await http.post("/api/v1/submit_measurement", content=make(rid), headers=POST_HEADERS)
        assert r.status_code == status and says in r.json()["error"], r.text
        assert (await http.get("/api/v1/measurements")).json()["metadata"]["count"] == 0


async def test_a_huge_submission_is_413(tmp_path: Path) -> None:
    async with collector(settings(tmp_path, max_body=64 * 1024)) as (_, http):
        m = measurement("20261129T000835Z_webconnectivity_PK_64501_n1_x")
        m["test_keys"]["body"] = "x" * 100_000
        r = await http.post("/api/v1/submit_measurement", content=submission(m))
        assert r.status_code == 413 and "larger than 65536 bytes" in r.json()["error"]
        r = await http.post("/api/v1/check-in", content=b'{"platform": "' + b"x" * 70_000 + b'"}')
        assert r.status_code == 413


async def test_measurement_meta_and_raw_measurement(store_location: str, tmp_path: Path) -> None:
    async with collector(settings(tmp_path, store=store_location)) as (_, http):
        checked = (await http.post("/api/v1/check-in", content=go_json(check_in_body()))).json()
        rid = checked["tests"]["web_connectivity"]["report_id"]
        m = measurement(rid)
        uid = (await http.post("/api/v1/submit_measurement", content=submission(m))).json()["measurement_uid"]
        tor_rid = checked["tests"]["tor"]["report_id"]
        tor = {**MINIMAL, "test_name": "tor", "report_id": tor_rid, "test_start_time": "2026-11-29 09:59:00"}
        tor_uid = (await http.post("/api/v1/submit_measurement", content=submission(tor))).json()[
            "measurement_uid"
        ]

        # probe-cli's GetMeasurementMeta: report_id, input, full=true
        params = {"report_id": rid, "input": m["input"], "full": "true"}
        r = await http.get("/api/v1/measurement_meta", params=params, headers=GO_HEADERS)
        meta = r.json()
        assert r.status_code == 200
        raw = meta.pop("raw_measurement")
        assert meta == {
            "input": m["input"],
            "measurement_start_time": "2026-11-29T10:00:01Z",
            "measurement_uid": uid,
            "report_id": rid,
            "test_name": "web_connectivity",
            "probe_asn": 64501,
            "probe_cc": "PK",
            "scores": "{}",
            "anomaly": False,
            "confirmed": False,
            "failure": meta["failure"],
            "category_code": None,
            "test_start_time": "2026-11-29T10:00:00Z",
        }
        assert isinstance(raw, str) and orjson.loads(raw)["test_keys"] == m["test_keys"]
        by_uid = (await http.get("/api/v1/measurement_meta", params={"measurement_uid": uid})).json()
        assert "raw_measurement" not in by_uid and by_uid["report_id"] == rid
        # a test without input, by its report id alone (OONI's input = '')
        tor_meta = (await http.get("/api/v1/measurement_meta", params={"report_id": tor_rid})).json()
        assert tor_meta["measurement_uid"] == tor_uid and tor_meta["input"] is None
        assert (await http.get("/api/v1/measurement_meta", params={"report_id": rid})).json() == {}

        for params in ({"measurement_uid": uid}, {"report_id": rid, "input": m["input"]}):
            r = await http.get("/api/v1/raw_measurement", params=params)
            assert r.status_code == 200 and r.headers["content-type"] == "application/json"
            assert r.content == (await http.get(f"/api/v1/measurement/{uid}")).content
            assert (await http.head("/api/v1/raw_measurement", params=params)).status_code == 200

        # not found: OONI's 200 with {} (probe-cli reads it as "not there yet")
        unknown = {"measurement_uid": "20261129000835.826764_PK_webconnectivity_0000000000000000"}
        assert (await http.get("/api/v1/measurement_meta", params=unknown)).json() == {}
        assert (await http.get("/api/v1/measurement_meta", params={**unknown, "full": "1"})).json() == {
            "raw_measurement": ""
        }
        r = await http.get("/api/v1/raw_measurement", params=unknown)
        assert r.status_code == 200 and r.json() == {}


@pytest.mark.parametrize("route", ["/api/v1/measurement_meta", "/api/v1/raw_measurement"])
@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({}, 400),
        ({"input": "https://x.example/"}, 400),
        ({"report_id": "bad id with spaces!"}, 422),
        ({"report_id": "x" * 101}, 422),
        ({"measurement_uid": "ab"}, 422),
        ({"measurement_uid": "x" * 200}, 422),
        ({"uid": "x"}, 422),
        ({"full": "maybe", "measurement_uid": "abc"}, 422),
    ],
)
async def test_bad_meta_parameters_are_4xx(
    tmp_path: Path, route: str, params: dict[str, str], status: int
) -> None:
    if route.endswith("raw_measurement") and "full" in params:
        status = 422  # not one of its parameters
    async with collector(settings(tmp_path)) as (_, http):
        r = await http.get(route, params=params)
        assert r.status_code == status and r.json()["error"], r.text


async def test_the_routes_are_in_openapi(tmp_path: Path) -> None:
    async with collector(settings(tmp_path)) as (_, http):
        paths = (await http.get("/openapi.json")).json()["paths"]
    assert set(paths["/api/v1/check-in"]["post"]["responses"]) >= {"200", "400", "413", "422"}
    assert "content" in str(paths["/api/v1/submit_measurement"]["post"]["requestBody"])
    assert "test_helpers" not in paths["/api/v1/test-helpers"]["get"]  # no parameters
    for route, names in (
        ("/api/v1/measurement_meta", {"measurement_uid", "report_id", "input", "full"}),
        ("/api/v1/raw_measurement", {"measurement_uid", "report_id", "input"}),
        ("/api/v1/test-list/urls", {"country_code", "probe_cc", "category_codes", "limit", "debug"}),
    ):
        assert {p["name"] for p in paths[route]["get"]["parameters"]} == names, route
        assert {"200", "422"} <= set(paths[route]["get"]["responses"])


def test_a_probe_over_real_http(tmp_path: Path, lists: Path, geo_dbs: tuple[Path, Path]) -> None:
    """probe-cli's calls in its order on a real server: select the backend (test-helpers), check in,
    submit, and read the measurement's meta; its gzip-accepting client reads every answer."""
    s = settings(tmp_path, geo_dbs, test_lists=(lists,), test_helper="https://th.example.org/")
    with live_server(s) as base, httpx.Client(base_url=base, headers=GO_HEADERS) as http:
        assert http.get("/api/v1/test-helpers").json()["web-connectivity"][0]["type"] == "https"
        r = http.post("/api/v1/check-in", content=go_json(check_in_body()), headers=POST_HEADERS)
        wc = r.json()["tests"]["web_connectivity"]
        # loopback is in no database: the probe's claim
        assert r.json()["probe_cc"] == "PK" and len(wc["urls"]) == 4
        m = measurement(wc["report_id"], wc["urls"][0]["url"])
        r = http.post("/api/v1/submit_measurement", content=submission(m), headers=POST_HEADERS)
        assert r.status_code == 200, r.text
        uid = r.json()["measurement_uid"]
        meta = http.get(
            "/api/v1/measurement_meta", params={"report_id": wc["report_id"], "input": m["input"]}
        )
        assert meta.json()["measurement_uid"] == uid
        # a gzip-compressed body, as a client may send it
        r = http.post(
            "/api/v1/check-in",
            content=gzip.compress(go_json(check_in_body())),
            headers={**POST_HEADERS, "Content-Encoding": "gzip"},
        )
        assert r.status_code == 200


async def test_check_in_from_a_country_only_address(tmp_path: Path, geo_dbs: tuple[Path, Path]) -> None:
    """Attribution as for a submission: the country the databases give, the claimed network."""
    async with collector(settings(tmp_path, geo_dbs), client=OTHER) as (_, http):
        got = (await http.post("/api/v1/check-in", content=go_json(check_in_body()))).json()
        assert (got["probe_cc"], got["probe_asn"], got["probe_network_name"]) == ("IR", "AS64501", None)
