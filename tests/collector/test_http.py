"""Request bodies as clients really send them: compressed ones get a clear 415, never a JSON error
about invalid UTF-8, and nothing is stored."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Any

import orjson
import pytest

from collector.conftest import collector
from collector.test_app import OPEN, web
from reachwatch.collector.config import Settings


@pytest.mark.parametrize(
    ("coding", "compress"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("br", lambda b: b),
        ("GZIP, identity", gzip.compress),
    ],
)
async def test_compressed_bodies_are_415(
    tmp_path: Path, real_measurements: list[dict[str, Any]], coding: str, compress: Any
) -> None:
    m = web(real_measurements)[0]
    headers = {"content-encoding": coding, "content-type": "application/json"}
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0, ingest_workers=0)) as (_, http):
        rid = (await http.post("/report", json=OPEN)).json()["report_id"]
        for path, body in (
            ("/report", orjson.dumps(OPEN)),
            (f"/report/{rid}", orjson.dumps({"format": "json", "content": m})),
            ("/api/v1/measurements", orjson.dumps(m)),
        ):
            r = await http.post(path, content=compress(body), headers=headers)
            assert r.status_code == 415, (path, r.status_code, r.text)
            assert "Content-Encoding" in r.json()["error"] and "uncompressed" in r.json()["error"]
        assert (await http.get("/api/v1/measurements")).json()["metadata"]["count"] == 0
        for coding_ok in ("identity", ""):
            r = await http.post(
                "/api/v1/measurements", content=orjson.dumps(m), headers={"content-encoding": coding_ok}
            )
            assert r.status_code == 200, (coding_ok, r.text)
