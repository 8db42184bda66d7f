from __future__ import annotations

from typing import Any

import orjson

from collector.conftest import collector
from collector.test_app import web
from reachwatch.collector.config import Settings

AUTH = {"authorization": "Bearer s3cret"}


async def test_admin_needs_the_token(store_location: str, real_measurements: list[dict[str, Any]]) -> None:
    ms = web(real_measurements)[:4]
    async with collector(Settings(store=store_location, rate=0, admin_token="s3cret")) as (app, http):
        uids = (
            await http.post("/api/v1/measurements", content=b"\n".join(orjson.dumps(m) for m in ms))
        ).json()["measurement_uids"]
        assert (await http.delete(f"/api/v1/measurement/{uids[0]}")).status_code == 401
        wrong = await http.delete(f"/api/v1/measurement/{uids[0]}", headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert (await http.post("/api/v1/admin/reanalyse")).status_code == 401
        assert (await http.delete(f"/api/v1/measurement/{uids[0]}", headers=AUTH)).status_code == 200
        assert (await http.get(f"/api/v1/measurement/{uids[0]}")).status_code == 404
        assert (await http.delete(f"/api/v1/measurement/{uids[0]}", headers=AUTH)).status_code == 404
        await app.state.ingestor.settled()  # verdicts come after the acknowledgement
        before = (await http.get("/api/v1/measurements")).json()["results"]
        r = await http.post("/api/v1/admin/reanalyse", headers=AUTH)
        assert r.status_code == 200 and r.json()["reanalysed"] == len(ms) - 1
        after = (await http.get("/api/v1/measurements")).json()["results"]
        assert [(x["measurement_uid"], x["blocking"], x["x_rule"]) for x in before] == [
            (x["measurement_uid"], x["blocking"], x["x_rule"]) for x in after
        ]


async def test_admin_disabled_without_token(tmp_path) -> None:
    async with collector(Settings(store=str(tmp_path / "m.duckdb"))) as (_, http):
        assert (await http.post("/api/v1/admin/reanalyse", headers=AUTH)).status_code == 403
