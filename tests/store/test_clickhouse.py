"""ClickHouse-only behaviour: what MergeTree's lack of a unique key asks of the store."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time

import httpx
import pytest

from reachwatch.errors import UserError
from reachwatch.store import Filters, clickhouse_verdicts, open_store
from reachwatch.store.clickhouse import INSERT_ID, by_days
from reachwatch.store.clickhouse_verdicts import JOIN_PREFIX
from reachwatch.store.schema import META_TABLE, TABLE, Analysis
from store.rows import row


@pytest.mark.clickhouse
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


@pytest.mark.clickhouse
async def test_a_day_is_a_partition_and_an_insert_over_many_days_is_stored_whole(
    clickhouse_url: str,
) -> None:
    store = open_store(f"{clickhouse_url}/days")
    await store.open()
    try:
        rows = [
            row(i, day=(dt.date(2024, 1, 1) + dt.timedelta(days=i % 150)).isoformat()) for i in range(300)
        ]
        await store.insert(rows)
        hashes = [r.content_hash for r in rows]
        assert set(await store.existing(hashes)) == set(hashes)
        # the duplicate check reads only the days it is given (the partitions: not the whole table)
        first_days = {dt.date(2024, 1, 1) + dt.timedelta(days=d) for d in range(3)}
        assert set(await store.existing(hashes, first_days)) == {
            r.content_hash for r in rows if r.measurement_start_day in first_days
        }
        assert await store.existing(hashes, {dt.date(2030, 1, 1)}) == {}
        async with httpx.AsyncClient(base_url=clickhouse_url) as http:
            ddl = await http.post("/", content=f"SHOW CREATE TABLE days.{TABLE}".encode())
            parts = await http.post(
                "/",
                content=f"SELECT uniqExact(partition) FROM system.parts WHERE database = 'days' "
                f"AND table = '{TABLE}' AND active FORMAT TSV".encode(),
            )
        assert "PARTITION BY measurement_start_day" in ddl.text
        assert int(parts.text) == 150
    finally:
        await store.close()


@pytest.mark.clickhouse
@pytest.mark.parametrize("join_database", ["default", "not_allowed"])
async def test_verdicts_of_a_whole_write_are_one_mutation_and_leave_no_table(
    clickhouse_url: str, join_database: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A mutation rewrites every part of the table (18.16), so a write of verdicts is one, however
    many rows (more than an IN list takes), through a Join table dropped after it. Where that
    table cannot be made (a database the user may not write, here one that does not exist), the
    verdicts still go in, in one mutation per IN list."""
    monkeypatch.setattr(clickhouse_verdicts, "JOIN_DATABASE", join_database)
    db = f"verdicts_{join_database}"
    store = open_store(f"{clickhouse_url}/{db}")
    await store.open()
    try:
        rows = [row(i, blocking=None, accessible=None, failure=True) for i in range(3_000)]
        await store.insert(rows)
        verdicts = [
            Analysis(
                r.measurement_uid,
                "dns" if i % 3 else None,
                i % 3 == 0,
                None,
                f"r{i % 5}",
                i % 3 > 0,
                i % 3 == 0,
            )
            for i, r in enumerate(rows)
        ]
        assert store.update_rows >= len(verdicts)
        await store.update_analysis(verdicts)
        async with httpx.AsyncClient(base_url=clickhouse_url) as http:

            async def tsv(sql: str) -> str:
                return (await http.post("/", content=f"{sql} FORMAT TSV".encode())).text

            made = int(await tsv(f"SELECT count() FROM system.mutations WHERE database = '{db}'"))
            # 18.16 counts each UPDATE command of an ALTER as a mutation: the fallback makes one
            # per distinct verdict and IN list
            assert made == 1 if join_database == "default" else made > 1
            left = await tsv(f"SELECT count() FROM system.tables WHERE name LIKE '{JOIN_PREFIX}%'")
            assert left == "0\n"
        _, got = await store.search(Filters(), 5_000, 0)
        by_uid = {g["measurement_uid"]: g for g in got}
        for v in verdicts:
            g = by_uid[v.measurement_uid]
            assert (g["blocking"], g["accessible"], g["x_rule"], g["anomaly"], g["failure"]) == (
                v.blocking,
                v.accessible,
                v.x_rule,
                v.anomaly,
                v.failure,
            )
            assert g["analysed"] and not g["confirmed"]
        await store.update_analysis(verdicts[:10])
        said = [r.getMessage() for r in caplog.records if "cannot make a table" in r.getMessage()]
        assert len(said) == (join_database != "default")  # once, on one line
        assert all("\n" not in text for text in said)
    finally:
        await store.close()


@pytest.mark.clickhouse
async def test_a_write_cancelled_under_its_mutation_leaves_the_mutation_what_it_reads(
    clickhouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A collector stopping cancels a write of verdicts in flight. Its mutation (a part at a time,
    here 200 days) still reads the Join table: dropping it made the mutation fail, and 18.16 retries
    a failed mutation for ever (an outside check, session 21). The table stays until the mutation
    is done; a later write drops it."""
    monkeypatch.setattr(clickhouse_verdicts, "JOIN_LEFT_AFTER", 0)
    store = open_store(f"{clickhouse_url}/cancelled")
    await store.open()
    try:
        rows = [
            row(
                i,
                day=(dt.date(2024, 1, 1) + dt.timedelta(days=i % 200)).isoformat(),
                blocking=None,
                failure=True,
            )
            for i in range(2_000)
        ]
        await store.insert(rows)
        verdicts = [Analysis(r.measurement_uid, "dns", False, "dns", "dns.hijack", True, False) for r in rows]
        async with httpx.AsyncClient(base_url=clickhouse_url, timeout=30) as http:

            async def value(sql: str) -> str:
                return (await http.post("/", content=f"{sql} FORMAT TSV".encode())).text.strip()

            mutations = "SELECT count() FROM system.mutations WHERE database = 'cancelled'"
            write = asyncio.create_task(store.update_analysis(verdicts))
            while await value(mutations) == "0" and not write.done():
                await asyncio.sleep(0.005)
            write.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await write
            for _ in range(600):  # the mutation ends (a failed one never would)
                if await value(f"{mutations} AND is_done = 0") == "0":
                    break
                await asyncio.sleep(0.1)
            assert await value(f"{mutations} AND is_done = 0") == "0"
            updated = "SELECT countIf(x_rule = 'dns.hijack') FROM cancelled.measurements"
            assert await value(updated) == str(len(rows))
            await store.update_analysis(verdicts[:1])  # drops what the cancelled write left
            left = f"SELECT count() FROM system.tables WHERE name LIKE '{JOIN_PREFIX}cancelled%'"
            assert await value(left) == "0"
    finally:
        await store.close()


@pytest.mark.clickhouse
async def test_join_tables_a_write_left_are_dropped_but_not_another_databases(
    clickhouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A collector killed in a write of verdicts (or a mutation that outlasted the wait) leaves its
    Join table in ``default``: the next write drops it once no mutation reads it, and leaves those
    of a database whose name continues this one's (``left`` and ``left_2``)."""
    monkeypatch.setattr(clickhouse_verdicts, "JOIN_LEFT_AFTER", 0)
    store = open_store(f"{clickhouse_url}/left")
    other = open_store(f"{clickhouse_url}/left_2")
    await store.open()
    await other.open()
    try:
        ours, theirs = f"{JOIN_PREFIX}left_{'ab' * 6}", f"{JOIN_PREFIX}left_2_{'cd' * 6}"
        async with httpx.AsyncClient(base_url=clickhouse_url) as http:

            async def sql(text: str) -> str:
                answer = await http.post("/", content=text.encode())
                assert answer.status_code == 200, answer.text
                return answer.text

            for name in (ours, theirs):
                await sql(
                    f"CREATE TABLE default.{name} (measurement_uid String) ENGINE = Join(ANY, LEFT, measurement_uid)"
                )
            await asyncio.sleep(1.1)  # older than JOIN_LEFT_AFTER, to the second
            await store.insert([row(1, blocking=None, failure=True)])
            await store.update_analysis(
                [Analysis(row(1).measurement_uid, "false", True, None, "r", False, False)]
            )
            left = await sql(
                f"SELECT name FROM system.tables WHERE name LIKE '{JOIN_PREFIX}left%' FORMAT TSV"
            )
            assert left.split() == [theirs]
            await sql(f"DROP TABLE default.{theirs}")
    finally:
        await store.close()
        await other.close()


def test_an_insert_over_more_days_than_one_insert_takes_is_cut_at_days() -> None:
    rows = [row(i, day=(dt.date(2024, 1, 1) + dt.timedelta(days=i % 7)).isoformat()) for i in range(40)]
    assert by_days(rows, most=7) == [rows]
    parts = by_days(rows, most=3)
    assert [len({r.measurement_start_day for r in p}) for p in parts] == [3, 3, 1]
    assert sorted(r.measurement_uid for p in parts for r in p) == sorted(r.measurement_uid for r in rows)


@pytest.mark.clickhouse
async def test_a_secret_just_stored_is_read_again_once_others_have_stored_theirs(clickhouse_url: str) -> None:
    """Collectors started together on a new database: one reads another's secret a moment after it
    was stored, while a third, which found none before, is about to store a smaller one. All must
    end with the same (the smallest): the reader of a young secret waits until it has settled."""
    store = open_store(f"{clickhouse_url}/young")
    await store.open()
    try:
        async with httpx.AsyncClient(base_url=clickhouse_url) as http:

            async def stored(hexa: str) -> None:
                sql = f"INSERT INTO young.{META_TABLE} VALUES ('secret', '{hexa}@{time.time():.3f}')"
                (await http.post("/", content=sql.encode())).raise_for_status()

            await stored("ff" * 32)
            reading = asyncio.create_task(store.secret())
            await asyncio.sleep(0.2)
            await stored("00" * 32)
            assert await reading == bytes(32)
    finally:
        await store.close()


@pytest.mark.parametrize("name", ["123db", "dbé", "db²", "٣db", "a-b", "system", "INFORMATION_SCHEMA"])
def test_a_database_name_clickhouse_would_not_take_is_a_clear_error(name: str) -> None:
    """Non-ASCII digits and letters passed ``isalnum`` and ended in a traceback; ``system`` was
    taken, and the collector's tables made in ClickHouse's own database (an outside check)."""
    with pytest.raises(UserError) as caught:
        open_store(f"http://127.0.0.1:8123/{name}")
    assert caught.value.fix and name in str(caught.value)


async def test_credentials_in_the_url_are_used_and_never_said_back(clickhouse_url: str) -> None:
    """``http://USER:PASSWORD@HOST/DB`` ended in a traceback: basic authentication now, and an error
    that names the user but not the password."""
    host = clickhouse_url.removeprefix("http://")
    store = open_store(f"http://default:@{host}/with_user")  # the server's user, no password
    await store.open()
    await store.insert([row(1)])
    assert (await store.search(Filters(), 10, 0))[0] == 1
    await store.close()
    wrong = open_store(f"http://nobody:s3cret@{host}/with_user")
    with pytest.raises(UserError) as caught:
        await wrong.open()
    said = f"{caught.value} {caught.value.where} {caught.value.fix}"
    assert "refused" in said and "nobody@" in said and "s3cret" not in said
    await wrong.close()
