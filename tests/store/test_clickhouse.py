"""ClickHouse-only behaviour: what MergeTree's lack of a unique key asks of the store."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from reachwatch.store import open_store
from reachwatch.store.clickhouse import INSERT_ID
from reachwatch.store.schema import TABLE

pytestmark = pytest.mark.clickhouse


async def test_open_waits_for_an_insert_still_running_from_before(clickhouse_url: str) -> None:
    """A collector killed with an insert in flight is answered never, but ClickHouse commits the
    insert, possibly seconds later (it delays inserts into a table with too many parts). The next
    collector must see those rows before it checks a resend for duplicates: its open waits for
    that insert, known by its query id. The insert here takes ~2 s by a sleep in its SELECT."""
    location = f"{clickhouse_url}/earlier"
    first = open_store(location)
    await first.open()
    await first.close()
    slow = (
        f"INSERT INTO {TABLE} (measurement_uid, content_hash, measurement_start_time, measurement_start_day) "
        "SELECT 'uid-earlier', 'hash-earlier', toDateTime('2026-01-01 00:00:00'), toDate('2026-01-01') "
        "FROM system.one WHERE sleep(2) = 0"
    )
    async with httpx.AsyncClient(base_url=clickhouse_url, timeout=30) as http:
        params = {"database": "earlier", "query_id": f"{INSERT_ID}earlier-killed"}
        inflight = asyncio.create_task(http.post("/", params=params, content=slow.encode()))
        for _ in range(100):  # until ClickHouse runs it
            seen = await http.post("/", content=b"SELECT query_id FROM system.processes FORMAT TSV")
            if b"earlier-killed" in seen.content:
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("the slow insert never showed in system.processes")
        second = open_store(location)
        await second.open()
        try:
            assert inflight.done()  # open returned only once the insert from before had ended
            assert (await inflight).status_code == 200
            assert await second.existing(["hash-earlier"]) == {"hash-earlier": "uid-earlier"}
        finally:
            await second.close()
