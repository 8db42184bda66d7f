"""The Store protocol's behaviour, identical on DuckDB and ClickHouse."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import urllib.parse

import duckdb
import httpx
import pytest

from reachwatch.errors import UserError
from reachwatch.store import Filters, ListOrder, open_store
from reachwatch.store import clickhouse as clickhouse_store
from reachwatch.store import duckdb as duckdb_store
from reachwatch.store.compression import compress, decompress
from reachwatch.store.schema import (
    COLUMNS,
    IDENTITY,
    LEGACY_IDENTITY,
    META_TABLE,
    TABLE,
    Analysis,
    Row,
)
from store.backends import JOURNALED, open_location


def row(i: int, **over: object) -> Row:
    start = dt.datetime(2026, 1, 1 + i % 3, 12, 0, i % 60)
    base = Row(
        measurement_uid=f"20260101000000.{i:06d}_PK_webconnectivity_{i:016x}",
        content_hash=f"{i:032x}",
        report_id=f"r{i % 2}",
        input=f"https://site{i % 4}.example/",
        domain=f"site{i % 4}.example",
        probe_cc="PK" if i % 2 else "IR",
        probe_asn="AS64501",
        probe_network_name="Net",
        attributed=True,
        x_probe_cc_claimed=None,
        x_probe_asn_claimed=None,
        measurement_start_time=start,
        measurement_start_day=start.date(),
        test_name="web_connectivity",
        blocking="dns" if i % 5 == 0 else "false",
        accessible=i % 5 != 0,
        x_technique="dns-hijack" if i % 5 == 0 else "none",
        x_rule="r",
        anomaly=i % 5 == 0,
        confirmed=False,
        failure=False,
        category_code="NEWS" if i % 2 else None,
        probe_id_hash="h",
        raw=compress(b'{"i": %d}' % i),
    )
    return dataclasses.replace(base, **over)


async def test_store_behaviour(store_variant: str) -> None:
    store = open_location(store_variant)
    await store.open()
    try:
        secret = await store.secret()
        assert len(secret) == 32 and await store.secret() == secret
        rows = [row(i) for i in range(20)] + [
            row(20, blocking=None, accessible=None, failure=True, anomaly=False, x_technique=None)
        ]
        await store.insert(rows[:10])
        await store.insert(rows[10:])
        assert await store.existing([rows[3].content_hash, "f" * 32]) == {
            rows[3].content_hash: rows[3].measurement_uid
        }
        # the days of the measurements, when given, may narrow the read (a duplicate has its
        # original's day): whatever the store makes of them, what is stored is found
        day, other = rows[3].measurement_start_day, rows[3].measurement_start_day + dt.timedelta(days=40)
        found = {rows[3].content_hash: rows[3].measurement_uid}
        assert await store.existing([rows[3].content_hash, "f" * 32], {day, other}) == found
        raw = await store.get_raw(rows[7].measurement_uid)
        assert raw is not None and decompress(raw) == b'{"i": 7}'
        assert await store.get_raw("nope") is None

        count, got = await store.search(Filters(), 5, 0)
        assert count == 21 and len(got) == 5
        assert got[0]["measurement_start_time"] >= got[-1]["measurement_start_time"]
        assert isinstance(got[0]["anomaly"], bool) and isinstance(
            got[0]["measurement_start_time"], dt.datetime
        )
        count, got = await store.search(Filters(probe_cc="PK", domain="site1.example"), 100, 0)
        assert count == len(got) == sum(1 for r in rows if r.probe_cc == "PK" and r.domain == "site1.example")
        count, _ = await store.search(Filters(blocking="true"), 100, 0)
        assert count == sum(r.anomaly for r in rows)
        count, _ = await store.search(Filters(blocking="null"), 100, 0)
        assert count == 1
        count, _ = await store.search(Filters(blocking="dns", category_code="NEWS"), 100, 0)
        assert count == sum(1 for r in rows if r.blocking == "dns" and r.category_code == "NEWS")
        since = dt.datetime(2026, 1, 2)
        count, _ = await store.search(Filters(since=since, until=dt.datetime(2026, 1, 3)), 100, 0)
        assert count == sum(1 for r in rows if since <= r.measurement_start_time < dt.datetime(2026, 1, 3))

        total = await store.aggregate(Filters(), [])
        assert total[0]["measurement_count"] == 21
        assert total[0]["anomaly_count"] == sum(r.anomaly for r in rows)
        assert total[0]["failure_count"] == 1
        assert total[0]["ok_count"] == 21 - sum(r.anomaly for r in rows) - 1
        by = await store.aggregate(Filters(probe_cc="PK"), ["measurement_start_day", "domain"])
        assert sum(int(r["measurement_count"]) for r in by) == sum(1 for r in rows if r.probe_cc == "PK")

        await store.update_analysis(
            [Analysis(rows[1].measurement_uid, "tcp_ip", False, "tcp-reset", "x", True, False)]
        )
        _, got = await store.search(Filters(blocking="tcp_ip"), 10, 0)
        assert [g["measurement_uid"] for g in got] == [rows[1].measurement_uid]
        assert got[0]["x_technique"] == "tcp-reset" and got[0]["anomaly"] is True

        assert await store.delete(rows[2].measurement_uid)
        assert not await store.delete(rows[2].measurement_uid)
        assert await store.get_raw(rows[2].measurement_uid) is None

        seen = [uid async for batch in store.raw_batches(7) for uid, _ in batch]
        assert sorted(seen) == sorted(r.measurement_uid for r in rows if r is not rows[2])
    finally:
        await store.close()


async def test_raw_batches_skip_no_row_when_one_is_deleted_meanwhile(store_variant: str) -> None:
    """Re-analysis (``POST /api/v1/admin/reanalyse``) reads every row in batches while the collector
    goes on: a delete between two batches shifted an offset past a row that was never re-analysed."""
    store = open_location(store_variant)
    await store.open()
    try:
        rows = [row(i) for i in range(20)]
        await store.insert(rows)
        seen: list[str] = []
        async for batch in store.raw_batches(5):
            if not seen:  # one of the first batch's rows goes
                assert await store.delete(batch[0][0])
            seen.extend(uid for uid, _ in batch)
        assert sorted(seen) == sorted(r.measurement_uid for r in rows)
    finally:
        await store.close()


async def test_raw_batches_read_their_uids_ahead_in_chunks(
    store_variant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The uids come a chunk at a time (``UID_CHUNK``), each batch's ``raw`` by its uids: every row
    once, across chunks, batches and deletes, with its own ``raw``."""
    monkeypatch.setattr(duckdb_store, "UID_CHUNK", 7)
    monkeypatch.setattr(clickhouse_store, "UID_CHUNK", 7)
    store = open_location(store_variant)
    await store.open()
    try:
        rows = {r.measurement_uid: r for r in (row(i) for i in range(23))}
        await store.insert(list(rows.values()))
        gone = sorted(rows)[15]  # in the third chunk, deleted while the first is read
        seen: list[str] = []
        async for batch in store.raw_batches(3):
            assert 0 < len(batch) <= 3
            if not seen:
                assert await store.delete(gone)
            for uid, raw in batch:
                assert decompress(raw) == decompress(rows[uid].raw)
            seen.extend(uid for uid, _ in batch)
        assert sorted(seen) == sorted(set(rows) - {gone})
    finally:
        await store.close()


@pytest.mark.clickhouse
async def test_collectors_started_together_on_a_new_clickhouse_database_share_one_secret(
    clickhouse_url: str,
) -> None:
    """Report ids one issues must be valid at the other, and a measurement sent to both one row."""
    for n in range(3):
        stores = [open_store(f"{clickhouse_url}/together{n}") for _ in range(3)]
        for store in stores:
            await store.open()
        try:
            found = await asyncio.gather(*(store.secret() for store in stores))
            assert len(set(found)) == 1
        finally:
            for store in stores:
                await store.close()


async def test_reopen_keeps_rows_and_secret(store_variant: str) -> None:
    store = open_location(store_variant)
    await store.open()
    secret = await store.secret()
    await store.insert([row(1)])
    await store.close()
    again = open_location(store_variant)
    await again.open()
    try:
        assert await again.secret() == secret
        assert await again.existing([row(1).content_hash]) == {row(1).content_hash: row(1).measurement_uid}
    finally:
        await again.close()


async def test_unanalysed_rows_and_their_update(store_variant: str) -> None:
    """Rows stored before their verdict are the background analysis's backlog until updated."""
    store = open_location(store_variant)
    await store.open()
    try:
        rows = [row(i, analysed=i % 2 == 0) for i in range(10)]
        await store.insert(rows)
        pending = await store.unanalysed(100)  # type: ignore[attr-defined]
        assert sorted(uid for uid, _ in pending) == sorted(row(i).measurement_uid for i in range(1, 10, 2))
        assert {uid: decompress(raw) for uid, raw in pending}[rows[3].measurement_uid] == b'{"i": 3}'
        assert len(await store.unanalysed(2)) == 2  # type: ignore[attr-defined]
        # verdicts differ between rows (one command per distinct verdict on ClickHouse)
        await store.update_analysis(
            [
                Analysis(uid, "tcp_ip", False, "tcp-reset", "r", True, False)
                if n % 2
                else Analysis(uid, None, None, None, None, False, True)
                for n, (uid, _) in enumerate(pending)
            ]
        )
        assert await store.unanalysed(100) == []  # type: ignore[attr-defined]
        count, got = await store.search(Filters(blocking="tcp_ip"), 100, 0)
        assert count == 2 and all(g["analysed"] and g["anomaly"] for g in got)
        count, got = await store.search(Filters(blocking="null"), 100, 0)
        assert count == 3 and all(g["analysed"] and g["failure"] and g["x_rule"] is None for g in got)
    finally:
        await store.close()


async def test_a_table_without_the_analysed_column_gets_it(store_variant: str) -> None:
    """A table from before the column: its rows count as analysed (they got their verdict at ingest)."""
    old = [c for c in COLUMNS if c.name != "analysed"]
    if store_variant.startswith("http"):
        parts = urllib.parse.urlsplit(store_variant.removesuffix(JOURNALED))
        db, base = parts.path.strip("/"), f"{parts.scheme}://{parts.netloc}/"
        cols = ", ".join(f"{c.name} {c.clickhouse}" for c in old)
        for sql in (
            f"CREATE DATABASE {db}",
            f"CREATE TABLE {db}.{TABLE} ({cols}) ENGINE = MergeTree() "
            "PARTITION BY toYYYYMM(measurement_start_day) ORDER BY (probe_cc, probe_asn, domain, measurement_uid)",
            f"INSERT INTO {db}.{TABLE} (measurement_uid, content_hash, measurement_start_time, "
            "measurement_start_day) VALUES ('old', 'h-old', '2026-01-01 00:00:00', '2026-01-01')",
        ):
            httpx.post(base, content=sql.encode()).raise_for_status()
    else:
        con = duckdb.connect(store_variant.removesuffix(JOURNALED))
        con.execute(f"CREATE TABLE {TABLE} ({', '.join(f'{c.name} {c.duckdb}' for c in old)})")
        values = [
            v
            for c, v in zip(
                COLUMNS, dataclasses.replace(row(99), measurement_uid="old").values(), strict=True
            )
            if c.name != "analysed"
        ]
        con.execute(f"INSERT INTO {TABLE} VALUES ({', '.join('?' * len(values))})", values)
        con.close()
    store = open_location(store_variant)
    await store.open()
    try:
        assert await store.unanalysed(10) == []  # type: ignore[attr-defined]
        await store.insert([row(1, analysed=False)])
        assert [uid for uid, _ in await store.unanalysed(10)] == [row(1).measurement_uid]  # type: ignore[attr-defined]
        _, got = await store.search(Filters(), 10, 0)
        assert {g["measurement_uid"]: g["analysed"] for g in got} == {
            "old": True,
            row(1).measurement_uid: False,
        }
    finally:
        await store.close()


def _older_meta(location: str, meta: dict[str, bytes]) -> None:
    """The collector's meta table as another reachwatch left it, holding ``meta``."""
    if location.startswith("http"):
        parts = urllib.parse.urlsplit(location)
        db, base = parts.path.strip("/"), f"{parts.scheme}://{parts.netloc}/"
        values = ", ".join(f"('{k}', '{v.hex() if k == 'secret' else v.decode()}')" for k, v in meta.items())
        for sql in (
            f"CREATE DATABASE {db}",
            f"CREATE TABLE {db}.{META_TABLE} (key String, value String) ENGINE = TinyLog",
            f"INSERT INTO {db}.{META_TABLE} VALUES {values}",
        ):
            httpx.post(base, content=sql.encode()).raise_for_status()
    else:
        con = duckdb.connect(location)
        con.execute(f"CREATE TABLE {META_TABLE} (key VARCHAR PRIMARY KEY, value BLOB)")
        con.executemany(f"INSERT INTO {META_TABLE} VALUES (?, ?)", list(meta.items()))
        con.close()


async def test_a_new_store_records_its_identity_hash_with_its_secret(store_location: str) -> None:
    store = open_store(store_location)
    await store.open()
    try:
        assert await store.identity() == IDENTITY  # the one it records with the secret it will get
        await store.secret()
        assert await store.identity() == IDENTITY
    finally:
        await store.close()
    again = open_store(store_location)
    await again.open()
    try:
        assert await again.identity() == IDENTITY
    finally:
        await again.close()


async def test_a_store_from_before_the_identity_record_keeps_blake2b(store_location: str) -> None:
    """Its rows' content hashes are BLAKE2b: a resend of one must still be recognised."""
    _older_meta(store_location, {"secret": b"s" * 32})
    store = open_store(store_location)
    await store.open()
    try:
        assert await store.secret() == b"s" * 32
        assert await store.identity() == LEGACY_IDENTITY
    finally:
        await store.close()


async def test_an_identity_hash_this_version_does_not_know_is_a_clear_error(store_location: str) -> None:
    _older_meta(store_location, {"secret": b"s" * 32, "identity": b"sha3"})
    store = open_store(store_location)
    await store.open()
    try:
        with pytest.raises(UserError, match="'sha3' hash, which this version of reachwatch does not know"):
            await store.identity()
    finally:
        await store.close()


async def test_aggregation_counts_partition_rows_as_oonis(store_location: str) -> None:
    """OONI's aggregation counts each row once (failure, else confirmed, else anomaly, else ok), so
    its four counts add up to measurement_count; an anomaly that was also a failure or confirmed
    was counted twice here, and stacked charts and shares read from the counts went past 100 %."""
    store = open_store(store_location)
    await store.open()
    try:
        flags = [  # (anomaly, confirmed, failure)
            (False, False, False),
            (True, False, False),
            (True, True, False),
            (True, False, True),
            (True, True, True),
            (False, False, True),
        ]
        await store.insert([row(i, anomaly=a, confirmed=c, failure=f) for i, (a, c, f) in enumerate(flags)])
        [total] = await store.aggregate(Filters(), [])
        counts = {k: int(v) for k, v in total.items()}
        assert counts == {
            "measurement_count": 6,
            "ok_count": 1,
            "anomaly_count": 1,
            "confirmed_count": 1,
            "failure_count": 3,
        }
    finally:
        await store.close()


async def test_aggregation_by_asn_is_ordered_by_number(store_location: str) -> None:
    """Ordered as text, the ASNs came as AS1, AS137, AS30722, AS3269: the same SQL orders them by
    number on both backends (ClickHouse 18.16 included)."""
    store = open_store(store_location)
    await store.open()
    try:
        asns = ("AS3269", "AS1", "AS30722", "AS137", "AS0", "AS4294967295", "AS64501")
        await store.insert([row(i, probe_asn=asn) for i, asn in enumerate(asns)])
        by_number = sorted(asns, key=lambda a: int(a[2:]))
        got = [r["probe_asn"] for r in await store.aggregate(Filters(), ["probe_asn"])]
        assert got == by_number
        got_pairs = [
            (r["probe_cc"], r["probe_asn"])
            for r in await store.aggregate(Filters(), ["probe_cc", "probe_asn"])
        ]
        assert got_pairs == sorted(got_pairs, key=lambda p: (p[0], int(p[1][2:])))
        got_pairs = [
            (r["probe_asn"], r["probe_cc"])
            for r in await store.aggregate(Filters(), ["probe_asn", "probe_cc"])
        ]
        assert got_pairs == sorted(got_pairs, key=lambda p: (int(p[0][2:]), p[1]))
    finally:
        await store.close()


def _period_start(when: dt.datetime, grain: str) -> dt.date | dt.datetime:
    """What the aggregation should answer for a row at ``when``, worked out here in Python."""
    day = when.date()
    if grain == "hour":
        return when.replace(minute=0, second=0)
    if grain == "week":  # Sunday, as OONI's (ClickHouse's toStartOfWeek, mode 0)
        return day - dt.timedelta(days=(day.weekday() + 1) % 7)
    if grain == "month":
        return day.replace(day=1)
    if grain == "year":
        return day.replace(month=1, day=1)
    return day


@pytest.mark.parametrize("grain", ["hour", "day", "week", "month", "year"])
async def test_aggregation_counts_by_each_time_grain(store_location: str, grain: str) -> None:
    """OONI's ``time_grain``: the time axis counted by hour, day, week (from Sunday), month or
    year, with the same SQL's answer on both backends, as Python counts them, with a second axis,
    and within ``since``/``until``."""
    store = open_store(store_location)
    await store.open()
    try:
        # Saturdays, Sundays and Mondays across a turn of month and of year, at several hours
        starts = [
            dt.datetime(1970, 1, 3, 12, 0, 0),  # a week from Sunday 1969-12-28: before ClickHouse's Dates
            dt.datetime(2025, 12, 27, 23, 59, 59),
            dt.datetime(2025, 12, 28, 0, 0, 0),
            dt.datetime(2025, 12, 28, 0, 30, 0),
            dt.datetime(2025, 12, 29, 13, 5, 0),
            dt.datetime(2025, 12, 31, 23, 0, 0),
            dt.datetime(2026, 1, 1, 0, 0, 1),
            dt.datetime(2026, 1, 3, 10, 0, 0),
            dt.datetime(2026, 1, 4, 10, 59, 59),
            dt.datetime(2026, 2, 1, 7, 0, 0),
        ]
        rows = [
            row(i, measurement_start_time=t, measurement_start_day=t.date(), probe_cc=("PK", "IR")[i % 2])
            for i, t in enumerate(starts)
        ]
        await store.insert(rows)
        want: dict[object, int] = {}
        for r in rows:
            key = _period_start(r.measurement_start_time, grain)
            want[key] = want.get(key, 0) + 1
        got = await store.aggregate(Filters(), ["measurement_start_day"], grain)
        assert [(g["measurement_start_day"], g["measurement_count"]) for g in got] == sorted(want.items())
        pairs: dict[tuple[object, str], int] = {}
        for r in rows:
            pair = (_period_start(r.measurement_start_time, grain), r.probe_cc)
            pairs[pair] = pairs.get(pair, 0) + 1
        got = await store.aggregate(Filters(), ["probe_cc", "measurement_start_day"], grain)
        got_pairs = [((g["measurement_start_day"], g["probe_cc"]), g["measurement_count"]) for g in got]
        assert sorted(got_pairs) == sorted(pairs.items())
        assert [g["probe_cc"] for g in got] == sorted(g["probe_cc"] for g in got)
        since, until = dt.datetime(2025, 12, 28, 0, 30), dt.datetime(2026, 1, 3, 10)
        got = await store.aggregate(Filters(since=since, until=until), ["measurement_start_day"], grain)
        assert sum(g["measurement_count"] for g in got) == sum(since <= t < until for t in starts)
    finally:
        await store.close()


async def test_the_list_takes_oonis_flags_report_id_and_order(store_location: str) -> None:
    """OONI's list parameters ``anomaly``, ``confirmed``, ``failure``, ``report_id``, ``order_by``
    and ``order``, the same SQL on both backends; pages in any order neither overlap nor skip."""
    store = open_store(store_location)
    await store.open()
    try:
        asns = ("AS3269", "AS1", "AS30722", "AS137")
        rows = [
            row(i, probe_asn=asns[i % 4], confirmed=i % 10 == 0, failure=i % 7 == 3, test_name=("tor", "web_connectivity")[i % 2])
            for i in range(23)
        ]  # fmt: skip
        rows[5] = dataclasses.replace(rows[5], input=None)  # without one: last either way
        await store.insert(rows)
        for flags, keep in (
            (Filters(anomaly=True), lambda r: r.anomaly),
            (Filters(anomaly=False), lambda r: not r.anomaly),
            (Filters(confirmed=True), lambda r: r.confirmed),
            (Filters(failure=True, report_id="r1"), lambda r: r.failure and r.report_id == "r1"),
            (Filters(report_id="r0", anomaly=True), lambda r: r.report_id == "r0" and r.anomaly),
            (Filters(report_id="nope"), lambda r: False),
        ):
            count, got = await store.search(flags, 100, 0)
            want = {r.measurement_uid for r in rows if keep(r)}
            assert count == len(want) and {g["measurement_uid"] for g in got} == want, flags
        keys = {
            "measurement_start_time": lambda r: r.measurement_start_time,
            "input": lambda r: r.input or "",
            "probe_cc": lambda r: r.probe_cc,
            "probe_asn": lambda r: int(r.probe_asn[2:]),  # by number, as the aggregation
            "test_name": lambda r: r.test_name,
        }
        for by, key in keys.items():
            for descending in (True, False):
                order = ListOrder(by, descending)
                pages = [(await store.search(Filters(), 5, offset, order))[1] for offset in range(0, 25, 5)]
                uids = [g["measurement_uid"] for page in pages for g in page]
                expected = sorted(rows, key=lambda r: r.measurement_uid)
                expected.sort(key=key, reverse=descending)  # stable: ties stay by uid
                expected.sort(key=lambda r: r.input is None and by == "input")  # without one last
                assert uids == [r.measurement_uid for r in expected], (by, descending)
    finally:
        await store.close()


async def test_a_big_batch_is_checked_stored_and_analysed_whole(store_variant: str) -> None:
    """ClickHouse parses at most 256 KiB of a query: the duplicate check of a batch of 7,300 lines
    or more (its hashes in one IN list) failed, a 503 for ever on ClickHouse, and through the
    journal, rows acknowledged and never stored (an outside check, session 15)."""
    store = open_location(store_variant)
    await store.open()
    try:
        rows = [row(i, report_id="r") for i in range(9_000)]
        await store.insert(rows)
        hashes = [r.content_hash for r in rows]
        known = await store.existing([*hashes, "f" * 32], {r.measurement_start_day for r in rows})
        assert known == {r.content_hash: r.measurement_uid for r in rows}
        assert (await store.search(Filters(), 1, 0))[0] == 9_000
        await store.update_analysis(
            [Analysis(r.measurement_uid, "tcp_ip", False, "tcp-reset", "x", True, i % 2 == 0) for i, r in enumerate(rows)]
        )  # fmt: skip
        assert (await store.search(Filters(blocking="tcp_ip", failure=True), 1, 0))[0] == 4_500
    finally:
        await store.close()


async def test_fractions_of_a_second_in_since_and_until_read_alike(store_location: str) -> None:
    """Stored times are whole seconds: ClickHouse dropped a bound's fraction, DuckDB kept it, and
    the two answered differently (an outside check, session 15)."""
    store = open_store(store_location)
    await store.open()
    try:
        at = dt.datetime(2024, 3, 1, 10, 0, 0)
        await store.insert([row(1, measurement_start_time=at, measurement_start_day=at.date())])
        second = dt.timedelta(seconds=1)
        for since, until, want in (
            (at + second / 2, None, 0),
            (at - second / 10, None, 1),
            (None, at + second / 2, 1),
            (None, at, 0),
            (at - second / 10, at + second / 10, 1),
            (at + second / 10, at + second * 0.9, 0),
        ):
            f = Filters(since=since, until=until)
            assert (await store.search(f, 10, 0))[0] == want, (since, until)
            assert (await store.aggregate(f, []))[0]["measurement_count"] == want, (since, until)
    finally:
        await store.close()
