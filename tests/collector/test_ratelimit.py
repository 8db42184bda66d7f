from __future__ import annotations

import dataclasses
import ipaddress
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.conftest import OTHER, PROBE_V4, collector, live_server
from collector.test_app import web
from reachwatch.collector.config import Settings
from reachwatch.collector.queue import Outbox
from reachwatch.collector.ratelimit import RateLimiter, network_key, networks_of


def test_keys() -> None:
    assert network_key("AS64501", "203.0.113.7") == "AS64501"
    assert network_key(None, "203.0.113.7") == "203.0.113.0/24"
    assert network_key(None, "2001:db8:1:2::7") == "2001:db8:1::/48"
    assert network_key(None, "") == "unknown" and network_key(None, "not an address") == "unknown"


@given(st.ip_addresses())
def test_keys_are_the_prefix_ipaddress_gives(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    """The IPv4 key cut as text is the /24 ``ipaddress`` gives, for every address."""
    prefix = 24 if ip.version == 4 else 48
    assert network_key(None, str(ip)) == str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def test_exempt_networks() -> None:
    default = RateLimiter(rate=1, burst=1)
    assert default.exempts("127.0.0.1") and default.exempts("127.8.9.10") and default.exempts("::1")
    assert not default.exempts("203.0.113.7") and not default.exempts("2001:db8::1")
    assert not default.exempts("") and not default.exempts("not an address")
    assert not RateLimiter(rate=1, burst=1, exempt="").exempts("127.0.0.1")
    chosen = RateLimiter(rate=1, burst=1, exempt="10.0.0.0/8, 2001:db8::/32")
    assert chosen.exempts("10.1.2.3") and chosen.exempts("2001:db8::1") and not chosen.exempts("127.0.0.1")
    with pytest.raises(ValueError, match=r"'10\.0\.0\.300' is not an IP address or network"):
        networks_of("10.0.0.300")


async def test_loopback_submitters_are_not_limited(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    """The collector's own host (its local probes, load tests, tools) is not a volunteer network."""
    ms = web(real_measurements)
    settings = Settings(store=str(tmp_path / "m.duckdb"), rate=1, burst=3)
    async with collector(settings, client="127.0.0.1") as (_, http):
        for m in ms[:6]:
            assert (await http.post("/api/v1/measurements", content=orjson.dumps(m))).status_code == 200
    async with collector(dataclasses.replace(settings, rate_exempt=""), client="127.0.0.1") as (_, http):
        codes = [
            (await http.post("/api/v1/measurements", content=orjson.dumps(m))).status_code for m in ms[:6]
        ]
        assert codes[:3] == [200, 200, 200] and 429 in codes[3:]


def test_token_bucket() -> None:
    now = [0.0]
    rl = RateLimiter(rate=10, burst=20, clock=lambda: now[0])
    assert rl.take("a", 20) == 0.0
    wait = rl.take("a", 5)
    assert 0.4 < wait <= 0.5
    assert rl.take("b", 1) == 0.0  # other networks are not affected
    now[0] += 0.5
    assert rl.take("a", 5) == 0.0
    assert rl.take("a", 21) == float("inf")
    assert RateLimiter(rate=0, burst=0).take("a", 10**9) == 0.0


async def test_429_with_retry_after(tmp_path: Path, real_measurements: list[dict[str, Any]]) -> None:
    ms = web(real_measurements)
    settings = Settings(store=str(tmp_path / "m.duckdb"), rate=1, burst=3)
    async with collector(settings, client=OTHER) as (_, http):
        ok = await http.post("/api/v1/measurements", content=b"\n".join(orjson.dumps(m) for m in ms[:3]))
        assert ok.status_code == 200
        limited = await http.post("/api/v1/measurements", content=orjson.dumps(ms[3]))
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        too_big = await http.post("/api/v1/measurements", content=b"\n".join(orjson.dumps(m) for m in ms[:5]))
        # more lines than the burst can never pass: a 413 that says so, not a 429 to wait for
        assert too_big.status_code == 413 and "at most 3 lines per batch" in too_big.json()["error"]
    async with collector(settings, client=PROBE_V4) as (_, http):  # another /24: its own bucket
        assert (await http.post("/api/v1/measurements", content=orjson.dumps(ms[4]))).status_code == 200


async def test_the_outbox_gets_through_a_burst_smaller_than_its_batches(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    """A collector run with ``--burst`` under the outbox's 500 lines answered every batch 429 with
    ``Retry-After: 3600``: ``reachwatch submit`` waited and resent it until it gave up, sending
    nothing. The 413 makes it halve its batches until they fit (here also past the batch workers'
    32 lines)."""
    sample = web(real_measurements)[0]
    box = Outbox(tmp_path / "box")
    for i in range(70):
        box.put({**sample, "input": f"https://site{i}.example/"})
    # the outbox runs here, on loopback: limited like any network for this test
    settings = Settings(
        store=str(tmp_path / "m.duckdb"), rate=1000, burst=20, ingest_workers=1, rate_exempt=""
    )
    with live_server(settings) as url:
        result = await box.flush(url, retry_for=10)
    assert (result.sent, result.rejected, result.remaining) == (70, 0, 0)


@pytest.mark.parametrize("via", ["peer", "proxy"])
async def test_an_ipv4_mapped_submitter_is_limited_as_its_ipv4_network(
    via: str, tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    """Every unattributed IPv4-mapped submitter (``::ffff:10.5.0.1``, from a dual-stack socket or
    proxy) had the key ``::/48``: one network that used up its bucket got every other IPv4
    submitter refused. The key is the IPv4 address's /24, however the address was written."""
    ms = web(real_measurements)
    settings = Settings(
        store=str(tmp_path / "m.duckdb"),
        rate=0.01,
        burst=3,
        trusted_proxies="127.0.0.1" if via == "proxy" else None,
    )
    async with collector(settings, client="127.0.0.1") as (app, _):

        async def post(submitter: str, m: dict[str, Any]) -> int:
            peer, headers = (
                ("127.0.0.1", {"X-Forwarded-For": submitter}) if via == "proxy" else (submitter, {})
            )
            transport = httpx.ASGITransport(app=app, client=(peer, 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://collector") as http:
                r = await http.post("/api/v1/measurements", content=orjson.dumps(m), headers=headers)
                return r.status_code

        assert [await post("::ffff:10.5.0.1", m) for m in ms[:5]] == [200, 200, 200, 429, 429]
        assert await post("::ffff:192.0.2.1", ms[5]) == 200  # another network: its own bucket
        assert await post("10.5.0.9", ms[6]) == 429  # the same /24, written plainly


async def test_an_ipv4_mapped_loopback_peer_is_exempt(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    """A collector listening on ``::`` sees its own host's IPv4 clients as ``::ffff:127.0.0.1``:
    they are loopback, and exempt as such."""
    ms = web(real_measurements)
    settings = Settings(store=str(tmp_path / "m.duckdb"), rate=0.01, burst=1)
    async with collector(settings, client="::ffff:127.0.0.1") as (_, http):
        codes = [
            (await http.post("/api/v1/measurements", content=orjson.dumps(m))).status_code for m in ms[:3]
        ]
    assert codes == [200, 200, 200]


def test_idle_buckets_go_without_a_refusal() -> None:
    """Buckets were dropped only when a request was refused with more than 100,000 held: with
    none refused, every network ever seen stayed in memory. A bucket idle until it is full again
    is as good as none (a new one is full), and goes as the next requests come."""
    now = [0.0]
    rl = RateLimiter(rate=10, burst=20, clock=lambda: now[0], exempt="")
    for i in range(10_000):
        assert rl.take(f"old{i}") == 0.0
    now[0] += 2.0  # every old bucket full again
    for i in range(10_000):
        assert rl.take(f"new{i}") == 0.0
    assert rl.statistics().buckets == 10_000
    # a bucket not full yet is kept, the full ones before it gone: its network is still limited
    assert rl.take("busy", 20) == 0.0
    now[0] += 1.5  # the new buckets full again, busy's not (15 of 20)
    for i in range(10_000):
        rl.take(f"later{i}")
    assert rl.statistics().buckets == 1 + 10_000
    assert rl.take("busy", 20) > 0


def test_the_buckets_held_are_capped() -> None:
    """Past ``max_buckets`` the network seen least recently is forgotten (its next request finds a
    full bucket): memory stays bounded however many networks a burst of requests comes from."""
    now = [0.0]
    rl = RateLimiter(rate=1, burst=3, clock=lambda: now[0], exempt="", max_buckets=1_000)
    for _ in range(3):
        rl.take("busy")
    for i in range(5_000):
        rl.take(f"n{i}")
        if i % 100 == 0:
            assert rl.take("busy") > 0  # seen recently: kept, and still limited
    stats = rl.statistics()
    assert stats.buckets == 1_000 and stats.evicted == 5_001 - 1_000
    assert rl.take("n0") == 0.0 and rl.statistics().evicted == 5_001 - 1_000 + 1


def test_a_request_costs_the_same_whatever_the_buckets_held() -> None:
    """With 150,000 recent buckets each refused request rebuilt the whole dict (57 ms each, an
    outside check). A request now looks at a few buckets, the oldest, whatever the number held:
    counted here, not timed (``benchmarks/ratelimit.py`` times it)."""
    examined = []
    for held in (1_000, 10_000, 150_000):
        # the clock stands still: every bucket recent, none full again
        rl = RateLimiter(rate=1, burst=3, clock=lambda: 0.0, exempt="", max_buckets=200_000)
        for i in range(held):
            rl.take(f"n{i}")
        for _ in range(3):
            rl.take("busy")
        before = rl.statistics().examined
        for i in range(100):
            assert rl.take("busy") > 0  # refused
            assert rl.take(f"new{i}") == 0.0  # a new network
        examined.append(rl.statistics().examined - before)
        assert rl.statistics().buckets == held + 1 + 100
    assert examined[0] <= 3 * 200 and examined == [examined[0]] * 3, examined
