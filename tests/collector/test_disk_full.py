"""A full disk: the collector answers 503 + Retry-After with a message that says so, keeps every
measurement it acknowledged (in its journal while the database cannot take them; in the file once
there is room again), and logs what the store said."""

from __future__ import annotations

import contextlib
import logging
import subprocess
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from collector.conftest import collector
from collector.test_app import web
from reachwatch.collector.config import Settings
from reachwatch.collector.ingest import STORE_FAILED
from reachwatch.errors import UserError


async def test_a_full_disk_is_a_503_and_loses_nothing_acknowledged(
    small_disk: Path, real_measurements: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    sample = web(real_measurements)[0]
    db = small_disk / "m.duckdb"
    acknowledged: set[str] = set()
    refused = None
    with caplog.at_level(logging.ERROR):
        async with collector(Settings(store=str(db), rate=0, ingest_workers=0)) as (_, http):
            for b in range(200):  # ~3 KB a row: the 4 MB fill up long before the end
                lines = []
                for i in range(20):
                    m = dict(sample, input=f"https://site{b}-{i}.example/")
                    lines.append(orjson.dumps(m))
                r = await http.post("/api/v1/measurements", content=b"\n".join(lines))
                if r.status_code == 200:
                    acknowledged.update(r.json()["measurement_uids"])
                    continue
                refused = r
                health = await http.get("/api/v1/health")
                break
    assert refused is not None, "the disk never filled up"
    assert refused.status_code == 503
    assert refused.headers["Retry-After"].isdigit()
    assert refused.json()["error"] == STORE_FAILED
    assert health.status_code == 503 and health.json()["status"] == "store failing"
    assert any("store write failed" in r.getMessage() for r in caplog.records)
    assert acknowledged
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    async with collector(Settings(store=str(db), rate=0, ingest_workers=0)):
        pass  # the journal is stored at start
    assert not list((small_disk / "m.duckdb.journal").glob("*.rwj"))
    with duckdb.connect(str(db), read_only=True) as con:
        stored = {r[0] for r in con.execute("SELECT measurement_uid FROM measurements").fetchall()}
    assert acknowledged <= stored


async def test_a_store_that_could_not_be_made_on_a_full_disk_is_made_once_there_is_room(
    small_disk: Path,
) -> None:
    """Started on a full disk, the collector said so, but left a 0-byte file that every later
    start refused as "not a valid DuckDB database file", disk freed or not."""
    filler = small_disk / "filler"
    with filler.open("wb") as f, contextlib.suppress(OSError):
        f.write(b"\0" * (8 << 20))  # the disk is full
    db = small_disk / "m.duckdb"
    settings = Settings(store=str(db), rate=0)
    with pytest.raises(UserError, match="No space left"):
        async with collector(settings):
            pass
    assert not db.exists()
    db.touch()  # as an earlier version left it
    filler.unlink()
    async with collector(settings) as (_, http):
        assert (await http.get("/api/v1/health")).status_code == 200
