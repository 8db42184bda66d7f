"""The collector's behaviour through its HTTP API, on both storage backends."""

from __future__ import annotations

import copy
import re
import threading
from typing import Any

import httpx
import orjson
import pytest

from collector.conftest import collector
from reachwatch.collector.app import create_app
from reachwatch.collector.config import Settings

UID = re.compile(r"^\d{14}\.\d{6}_[A-Z]{2}_[a-z]+_[0-9a-f]{16}$")
OPEN = {
    "probe_asn": "AS64501",
    "probe_cc": "PK",
    "software_name": "reachwatch",
    "software_version": "0.1.0",
    "test_name": "web_connectivity",
    "test_version": "0.5.0",
    "data_format_version": "0.2.0",
    "format": "json",
}


def web(ms: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        copy.deepcopy(m)
        for m in ms
        if m.get("test_name") == "web_connectivity" and isinstance(m.get("input"), str)
    ]


async def test_ooni_protocol_round_trip(store_location: str, real_measurements: list[dict[str, Any]]) -> None:
    m = web(real_measurements)[0]
    async with collector(Settings(store=store_location, rate=0)) as (_, http):
        opened = (await http.post("/report", json=OPEN)).json()
        assert opened["supported_formats"] == ["json"] and opened["backend_version"]
        rid = opened["report_id"]
        assert rid.split("_")[1:4] == ["webconnectivity", "PK", "64501"]
        r = await http.post(f"/report/{rid}", json={"format": "json", "content": m})
        assert r.status_code == 200, r.text
        uid = r.json()["measurement_uid"]
        assert UID.match(uid) and f"_{m['probe_cc']}_webconnectivity_" in uid
        assert (await http.post(f"/report/{rid}/close")).status_code == 200
        stored = (await http.get(f"/api/v1/measurement/{uid}")).json()
        assert stored["report_id"] == rid and stored["input"] == m["input"]
        assert stored["test_keys"]["requests"] == m["test_keys"]["requests"]


async def test_batch_keeps_order_and_dedupes(
    store_location: str, real_measurements: list[dict[str, Any]]
) -> None:
    ms = web(real_measurements)
    async with collector(Settings(store=store_location, rate=0)) as (_, http):
        body = b"\n".join(orjson.dumps(m) for m in ms)
        r = await http.post("/api/v1/measurements", content=body)
        assert r.status_code == 200, r.text
        uids = r.json()["measurement_uids"]
        assert len(uids) == len(ms) == len(set(uids))
        again = await http.post("/api/v1/measurements", content=body)
        assert again.json()["measurement_uids"] == uids
        single = await http.post("/api/v1/measurements", content=orjson.dumps(ms[3]))
        assert single.json()["measurement_uids"] == [uids[3]]
        within = await http.post(
            "/api/v1/measurements", content=orjson.dumps(ms[0]) + b"\n" + orjson.dumps(ms[0])
        )
        assert within.json()["measurement_uids"] == [uids[0], uids[0]]
        listing = (await http.get("/api/v1/measurements", params={"limit": 1000})).json()
        assert listing["metadata"]["count"] == len(ms)
        for i, uid in enumerate(uids):
            assert (await http.get(f"/api/v1/measurement/{uid}")).json()["input"] == ms[i]["input"]


async def test_list_filters_and_paging(store_location: str, real_measurements: list[dict[str, Any]]) -> None:
    ms = web(real_measurements)
    async with collector(Settings(store=store_location, rate=0)) as (_, http):
        await http.post("/api/v1/measurements", content=b"\n".join(orjson.dumps(m) for m in ms))
        cc = ms[0]["probe_cc"]
        rows = (await http.get("/api/v1/measurements", params={"probe_cc": cc, "limit": 1000})).json()[
            "results"
        ]
        assert rows and len(rows) == sum(1 for m in ms if m["probe_cc"] == cc)
        row = rows[0]
        for key in (
            "measurement_uid",
            "report_id",
            "input",
            "probe_cc",
            "probe_asn",
            "test_name",
            "anomaly",
            "confirmed",
            "failure",
            "measurement_start_time",
            "measurement_url",
            "domain",
            "blocking",
            "accessible",
            "x_technique",
            "x_rule",
            "probe_id_hash",
        ):
            assert key in row
        assert row["measurement_start_time"].endswith("Z")
        dom = rows[0]["domain"]
        by_domain = (await http.get("/api/v1/measurements", params={"domain": dom})).json()["results"]
        assert by_domain and all(r["domain"] == dom for r in by_domain)
        page1 = (await http.get("/api/v1/measurements", params={"limit": 5})).json()
        page2 = (await http.get("/api/v1/measurements", params={"limit": 5, "offset": 5})).json()
        assert page1["metadata"]["next_url"] and page1["metadata"]["pages"] == (len(ms) + 4) // 5
        # absolute, as OONI's: a client follows them as they are
        nxt = page1["metadata"]["next_url"]
        assert nxt.startswith(str(http.base_url).rstrip("/") + "/api/v1/measurements?"), nxt
        assert (await http.get(nxt)).json()["results"] == page2["results"]
        url = page1["results"][0]["measurement_url"]
        assert url.startswith("http") and (await http.get(url)).status_code == 200
        first = {r["measurement_uid"] for r in page1["results"]}
        assert not first & {r["measurement_uid"] for r in page2["results"]}
        anomalies = (
            await http.get("/api/v1/measurements", params={"blocking": "true", "limit": 1000})
        ).json()
        assert all(r["anomaly"] for r in anomalies["results"])
        days = sorted({m["measurement_start_time"][:10] for m in ms})
        since = (await http.get("/api/v1/measurements", params={"since": days[-1], "limit": 1000})).json()
        assert since["results"] and all(r["measurement_start_time"] >= days[-1] for r in since["results"])
        until = (await http.get("/api/v1/measurements", params={"until": days[0], "limit": 1000})).json()
        assert until["results"] == []


async def test_aggregation_counts(store_location: str, real_measurements: list[dict[str, Any]]) -> None:
    ms = web(real_measurements)
    async with collector(Settings(store=store_location, rate=0)) as (app, http):
        await http.post("/api/v1/measurements", content=b"\n".join(orjson.dumps(m) for m in ms))
        await app.state.ingestor.settled()  # verdicts come after the acknowledgement
        total = (await http.get("/api/v1/aggregation")).json()
        assert total["dimension_count"] == 0
        res = total["result"]
        assert res["measurement_count"] == len(ms)
        # each row in exactly one count, as OONI's aggregation counts them
        assert res["ok_count"] + res["anomaly_count"] + res["confirmed_count"] + res["failure_count"] == len(
            ms
        )
        assert res["confirmed_count"] == 0
        by = (
            await http.get(
                "/api/v1/aggregation", params={"axis_x": "measurement_start_day", "axis_y": "probe_cc"}
            )
        ).json()
        assert by["dimension_count"] == 2
        assert sum(r["measurement_count"] for r in by["result"]) == len(ms)
        assert all(re.match(r"^\d{4}-\d{2}-\d{2}$", r["measurement_start_day"]) for r in by["result"])
        listing = (await http.get("/api/v1/measurements", params={"limit": 1000})).json()["results"]
        assert res["anomaly_count"] == sum(r["anomaly"] and not r["failure"] for r in listing)
        assert res["failure_count"] == sum(r["failure"] for r in listing)
        bad = await http.get("/api/v1/aggregation", params={"axis_x": "probe_ip"})
        assert bad.status_code == 422


async def test_non_web_connectivity_and_list_inputs_accepted(
    real_measurements: list[dict[str, Any]], tmp_path
) -> None:
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (_, http):
        r = await http.post(
            "/api/v1/measurements", content=b"\n".join(orjson.dumps(m) for m in real_measurements)
        )
        assert r.status_code == 200, r.text
        assert len(r.json()["measurement_uids"]) == len(real_measurements)


async def test_an_unexpected_error_is_answered_and_not_raised_to_the_server(
    tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    """A 500 is answered by the app's handler; Starlette re-raises the exception after it, which
    uvicorn logs with the whole traceback and answers by dropping the keep-alive connection."""
    app = create_app(Settings(store=str(tmp_path / "m.duckdb"), rate=0))

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret detail 192.0.2.1")

    transport = httpx.ASGITransport(app=app)  # raises what the app raises, as uvicorn would see it
    async with httpx.AsyncClient(transport=transport, base_url="http://collector") as http:
        r = await http.get("/boom")
    assert r.status_code == 500 and r.json() == {"error": "internal error"}
    assert "RuntimeError" in caplog.text and "192.0.2.1" not in caplog.text


async def test_data_format_0_1_measurements_use_test_start_time(tmp_path) -> None:
    """Measurements from before ``measurement_start_time`` (data format 0.1) have the report's
    ``test_start_time`` only: stored with it, as OONI's pipeline reads them, and kept as sent."""
    from store.backends import load_samples

    legacy = [
        m for m in load_samples("measurements_spec_examples.jsonl") if "measurement_start_time" not in m
    ]
    assert legacy
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (_, http):
        r = await http.post("/api/v1/measurements", content=b"\n".join(orjson.dumps(m) for m in legacy))
        assert r.status_code == 200, r.text
        for m, uid in zip(legacy, r.json()["measurement_uids"], strict=True):
            stored = (await http.get(f"/api/v1/measurement/{uid}")).json()
            assert (
                "measurement_start_time" not in stored and stored["test_start_time"] == m["test_start_time"]
            )
        listed = (await http.get("/api/v1/measurements", params={"limit": 1000})).json()["results"]
        starts = {r["measurement_start_time"] for r in listed}
        assert starts == {m["test_start_time"].replace(" ", "T") + "Z" for m in legacy}
        neither = {k: v for k, v in legacy[0].items() if k != "test_start_time"}
        r = await http.post("/api/v1/measurements", content=orjson.dumps(neither))
        assert r.status_code == 422 and "measurement_start_time" in r.text


async def test_a_report_opens_for_any_version_a_measurement_may_carry(tmp_path) -> None:
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (_, http):
        for field, value in (
            ("software_version", "3.22.0-alpha+git.1a2b3c"),
            ("software_name", "ooniprobe desktop"),
            ("test_version", "0.5.28~rc1"),
            ("data_format_version", "0.2.0"),
        ):
            r = await http.post("/report", json={**OPEN, field: value})
            assert r.status_code == 200 and r.json()["report_id"], (field, r.text)
        for field, value in (
            ("software_version", "3.22\n"),
            ("software_name", "x" * 129),
            ("test_name", "Web Connectivity"),
            ("probe_cc", "pak"),
        ):
            r = await http.post("/report", json={**OPEN, field: value})
            assert r.status_code == 422 and field in r.json()["error"], (field, value, r.text)


async def test_a_report_opens_as_ooni_backend_opens_it(tmp_path) -> None:
    """What OONI's backend takes when a report is opened, reachwatch takes too (ooni/backend,
    ooniprobe/routers/reports.py): a country in lower case, a test name in upper case, an empty
    software version, no test version; a test name with digits."""
    without_version = {k: v for k, v in OPEN.items() if k != "test_version"}
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (_, http):
        for body in (
            {**OPEN, "probe_cc": "pk"},
            {**OPEN, "test_name": "WEB_CONNECTIVITY"},
            {**OPEN, "software_version": ""},
            without_version,
        ):
            r = await http.post("/report", json=body)
            assert r.status_code == 200, (body, r.text)
            assert r.json()["report_id"].split("_")[1:4] == ["webconnectivity", "PK", "64501"]
        r = await http.post("/report", json={**OPEN, "test_name": "ndt7"})
        assert r.status_code == 200 and "_ndt7_PK_" in r.json()["report_id"]
        # ASCII letters only: Python's own case mapping made "ß" the country SS (an outside check)
        for field, value in (("probe_cc", "ß"), ("probe_cc", "\ufb00"), ("test_name", "\u212atest")):
            r = await http.post("/report", json={**OPEN, field: value})
            assert r.status_code == 422 and field in r.text, (field, value, r.text)


async def test_resends_after_a_restart_answer_the_first_uids(
    store_location: str, real_measurements: list[dict[str, Any]]
) -> None:
    """A probe that lost the answer resends after the collector restarted on the same store: the
    same uids (OONI flow and batch alike), each measurement stored once."""
    ms = web(real_measurements)[:6]
    settings = Settings(store=store_location, rate=0)
    body = b"\n".join(orjson.dumps(m) for m in ms)
    async with collector(settings) as (_, http):
        rid = (await http.post("/report", json=OPEN)).json()["report_id"]
        single = (await http.post(f"/report/{rid}", json={"format": "json", "content": ms[0]})).json()
        batch = (await http.post("/api/v1/measurements", content=body)).json()["measurement_uids"]
        assert batch[0] == single["measurement_uid"]
    async with collector(settings) as (_, http):
        again = await http.post(f"/report/{rid}", json={"format": "json", "content": ms[0]})
        assert again.status_code == 200 and again.json() == single
        assert (await http.post("/api/v1/measurements", content=body)).json()["measurement_uids"] == batch
        listing = (await http.get("/api/v1/measurements", params={"limit": 1000})).json()
        assert listing["metadata"]["count"] == len(ms)


async def test_every_post_route_answers_413_past_max_body(tmp_path) -> None:
    """``--max-body`` holds on every route that takes a body: the close route read none, and a
    300 KB body past a 200 KB limit was a 200 ``{}`` there (every other route: 413)."""
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0, max_body=200_000)) as (_, http):
        rid = (await http.post("/report", json=OPEN)).json()["report_id"]
        body = b"{" + b" " * 300_000 + b"}"

        async def streamed():  # no Content-Length: the limit applies while the body arrives
            for _ in range(30):
                yield b" " * 10_000

        for path in ("/report", f"/report/{rid}", f"/report/{rid}/close", "/api/v1/measurements"):
            for content in (body, streamed()):
                r = await http.post(path, content=content)
                assert r.status_code == 413 and "larger than 200000" in r.json()["error"], (path, r.text)
        # a close within the limit, with or without a body, is still answered {}
        for small in (b"", b"{}"):
            r = await http.post(f"/report/{rid}/close", content=small)
            assert r.status_code == 200 and r.json() == {}
        # an unknown report is a 404 before its body is read, as for a submission
        assert (await http.post(f"/report/{rid[:-1]}x/close", content=body)).status_code == 404


async def test_a_trailing_slash_is_a_404_not_a_redirect(tmp_path) -> None:
    """``POST /report/{id}/`` was a 307 to an absolute ``http://`` URL: behind a proxy ending TLS,
    a downgrade to plain HTTP. Such a URL is a 404 with the usual ``error``; so are the other
    routes' slashed forms. The dashboard's bare path still leads to it, by a relative redirect."""
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (_, http):
        rid = (await http.post("/report", json=OPEN)).json()["report_id"]
        for method, path in (
            ("POST", f"/report/{rid}/"),
            ("POST", "/report/"),
            ("POST", f"/report/{rid}/close/"),
            ("POST", "/api/v1/measurements/"),
            ("GET", "/api/v1/measurements/"),
            ("GET", "/api/v1/health/"),
            ("GET", "/dashboard/country/PK/"),
        ):
            r = await http.request(method, path, content=b"{}" if method == "POST" else None)
            assert r.status_code == 404 and "location" not in r.headers, (method, path, r.status_code)
            assert r.json()["error"] == "Not Found", (method, path)
        r = await http.get("/dashboard")
        assert r.status_code == 307 and r.headers["location"] == "/dashboard/"


async def test_big_bodies_are_staged_off_the_event_loop(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, real_measurements: list[dict[str, Any]]
) -> None:
    """A pathological measurement takes seconds to scrub: a big one (POOLED_BYTES) is staged on a
    thread (or a batch worker), so that no one request holds the event loop (an outside check,
    session 17); a small one stays on the loop, where it is cheapest."""
    from reachwatch.collector import app as app_module
    from reachwatch.collector.batch import POOLED_BYTES
    from reachwatch.collector.ingest import Ingestor

    on_loop: list[bool] = []
    stage, stage_lines = Ingestor.stage, app_module.stage_lines

    def staging(self: Ingestor, *args: Any, **kwargs: Any) -> Any:
        on_loop.append(threading.current_thread() is threading.main_thread())
        return stage(self, *args, **kwargs)

    def staging_lines(*args: Any, **kwargs: Any) -> Any:
        on_loop.append(threading.current_thread() is threading.main_thread())
        return stage_lines(*args, **kwargs)

    monkeypatch.setattr(Ingestor, "stage", staging)
    monkeypatch.setattr(app_module, "stage_lines", staging_lines)
    small = web(real_measurements)[0]
    big = copy.deepcopy(small)
    big["test_keys"]["x_padding"] = "x" * POOLED_BYTES
    settings = Settings(store=str(tmp_path / "m.duckdb"), rate=0, ingest_workers=0)
    async with collector(settings) as (_, http):
        for m in (small, big):
            rid = (await http.post("/report", json=OPEN)).json()["report_id"]
            r = await http.post(f"/report/{rid}", json={"format": "json", "content": m})
            assert r.status_code == 200, r.text
            r = await http.post(
                "/api/v1/measurements", content=orjson.dumps(dict(m, input="http://b.example/"))
            )
            assert r.status_code == 200, r.text
    assert on_loop == [True, True, False, False]
