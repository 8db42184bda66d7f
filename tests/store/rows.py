"""Store rows built directly (no collector): for aggregation, analysis and dashboard tests."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from collections.abc import Sequence
from typing import Any

import orjson

from reachwatch.store import open_store
from reachwatch.store.compression import compress
from reachwatch.store.schema import Row


def row(
    n: int,
    *,
    cc: str = "PK",
    asn: str = "AS64501",
    domain: str = "example.org",
    day: str = "2018-07-25",
    probe: str = "p1",
    blocking: str | None = "false",
    accessible: bool | None = True,
    technique: str | None = None,
    confirmed: bool = False,
    failure: bool = False,
    measurement: dict[str, Any] | None = None,
    network: str | None = "Indus Fibre",
    attributed: bool = True,
) -> Row:
    start = dt.datetime.fromisoformat(day) + dt.timedelta(seconds=n % 86_000)
    uid = f"{start:%Y%m%d%H%M%S}.000000_{cc}_webconnectivity_{n:016x}"
    m = measurement or {"input": f"https://{domain}/", "test_keys": {}}
    return Row(
        measurement_uid=uid,
        content_hash=hashlib.blake2b(uid.encode(), digest_size=16).hexdigest(),
        report_id=f"r-{probe}",
        input=f"https://{domain}/",
        domain=domain,
        probe_cc=cc,
        probe_asn=asn,
        probe_network_name=network,
        attributed=attributed,
        x_probe_cc_claimed=None,
        x_probe_asn_claimed=None,
        measurement_start_time=start,
        measurement_start_day=start.date(),
        test_name="web_connectivity",
        blocking=blocking,
        accessible=accessible,
        x_technique=technique,
        x_rule=None,
        anomaly=blocking not in (None, "false"),
        confirmed=confirmed,
        failure=failure,
        category_code=None,
        probe_id_hash=hashlib.blake2b(probe.encode(), digest_size=8).hexdigest(),
        raw=compress(orjson.dumps(m)),
    )


def fill(location: str, rows: Sequence[Row]) -> None:
    async def run() -> None:
        store = open_store(location)
        await store.open()
        try:
            await store.insert(rows)
        finally:
            await store.close()

    asyncio.run(run())


def mixed_rows() -> list[Row]:
    """Cells in every state, plus technique ties, artefacts, witnesses past 5 and unjudged rows."""
    rows: list[Row] = []
    n = iter(range(1, 10_000))
    # blocked by DNS hijack artefact, from one probe
    rows += [row(next(n), domain="a.org", blocking="dns", accessible=False, technique="dns-hijack")]
    # blocked by technique seen from 3 probes, 8 measurements (witnesses past 5)
    rows += [
        row(
            next(n),
            domain="b.org",
            probe=f"p{i % 3}",
            blocking="tcp_ip",
            accessible=False,
            technique="tcp-reset",
        )
        for i in range(8)
    ]
    # confirmed blockpage plus an ok one
    rows += [row(next(n), domain="c.org", blocking="http-diff", accessible=False, technique="http-blockpage",
                 confirmed=True), row(next(n), domain="c.org", probe="p2")]  # fmt: skip
    # ok: two probes accessible
    rows += [row(next(n), domain="d.org", probe=p) for p in ("p1", "p2", "p1")]
    # insufficient: one probe only
    rows += [row(next(n), domain="e.org", probe="p1")]
    # unjudged: control failures only, two probes
    rows += [
        row(next(n), domain="f.org", probe=p, blocking=None, accessible=None, failure=True)
        for p in ("p1", "p2")
    ]
    # down: control could not reach either
    rows += [row(next(n), domain="g.org", probe=p, blocking="false", accessible=False) for p in ("p1", "p2")]
    # likely blocked: 2 probes, 2 techniques (tie -> alphabetical), 5 of 6 blocked
    rows += [row(next(n), domain="h.org", probe=f"p{i % 2}", blocking="tcp_ip", accessible=False,
                 technique=("tcp-timeout", "tls-reset")[i % 2]) for i in range(4)]  # fmt: skip
    rows += [
        row(
            next(n),
            domain="h.org",
            probe="p0",
            blocking="http-failure",
            accessible=False,
            technique="http-reset",
        )
    ]
    rows += [row(next(n), domain="h.org", probe="p1")]
    # impaired: 1 throttled of 4, two probes
    rows += [row(next(n), domain="i.org", probe=f"p{i % 2}") for i in range(3)]
    rows += [row(next(n), domain="i.org", probe="p1", blocking="false", technique="throttled")]
    # undecided: verdicts without blocking/accessible but not failures
    rows += [row(next(n), domain="j.org", probe=p, blocking=None, accessible=None) for p in ("p1", "p2")]
    # another network, another day, another country
    rows += [
        row(next(n), domain="d.org", asn="AS64502", day="2018-07-26", probe=p, network=None)
        for p in ("q1", "q2")
    ]
    rows += [row(next(n), domain="d.org", cc="IR", asn="AS64503", probe=p) for p in ("r1", "r2")]
    # no domain: never a cell
    rows += [row(next(n), domain="")]
    return rows


#: since_rows(): (site, network) -> first blocked day; every other pair is reachable throughout
SINCE_DAYS = tuple(f"2026-11-{d}" for d in range(10, 20))
SINCE_PLAN = {
    ("blocked.example", "AS64501"): "2026-11-14",
    ("blocked.example", "AS64502"): "2026-11-10",
    **{("news.example", asn): "2026-11-17" for asn in ("AS64501", "AS64502", "AS64503")},
}


def since_rows() -> list[Row]:
    """Blocking that starts within the period (an outside study, session 17, in small): four
    networks in PK, two sites, 10-19 Nov 2026, two probes a day each; blocked days by DNS hijack."""
    rows: list[Row] = []
    n = iter(range(1, 100_000))
    for domain in ("blocked.example", "news.example"):
        for asn in ("AS64501", "AS64502", "AS64503", "AS64504"):
            since = SINCE_PLAN.get((domain, asn))
            for day in SINCE_DAYS:
                blocked = since is not None and day >= since
                verdict: dict[str, Any] = (
                    {"blocking": "dns", "accessible": False, "technique": "dns-hijack"} if blocked else {}
                )
                rows += [
                    row(next(n), asn=asn, domain=domain, day=day, probe=f"{asn}-{p}",
                        network=f"Net {asn[2:]}", **verdict)
                    for p in ("a", "b")
                ]  # fmt: skip
    return rows
