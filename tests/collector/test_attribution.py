from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from collector.conftest import OTHER, PROBE_V4, PROBE_V6, collector
from collector.test_app import web
from reachwatch.collector.attribution import Attributor, Network
from reachwatch.collector.config import Settings
from reachwatch.errors import UserError
from reachwatch.lab import mmdb

VENDORS: dict[str, dict[str, Any]] = {
    "geolite2-asn": {"autonomous_system_number": 64501, "autonomous_system_organization": "Net A"},
    "dbip-asn-lite": {"autonomous_system_number": 64501, "autonomous_system_organization": "Net A"},
    "ipinfo-asn": {"asn": "AS64501", "name": "Net A", "domain": "a.example"},
    "ipinfo-country-asn": {"asn": "AS64501", "as_name": "Net A", "country": "PK", "country_name": "Pakistan"},
    "ipinfo-lite": {"asn": "AS64501", "as_name": "Net A", "country_code": "PK", "country": "Pakistan"},
}


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_vendor_field_names(vendor: str, tmp_path: Path) -> None:
    db = mmdb.write(tmp_path / "a.mmdb", {"203.0.113.0/24": VENDORS[vendor]})
    net = Attributor(db).lookup(PROBE_V4)
    assert net.asn == "AS64501" and net.name == "Net A"
    if "country" in vendor or ("lite" in vendor and vendor.startswith("ipinfo")):
        assert net.cc == "PK"


def test_country_dbs(tmp_path: Path) -> None:
    geolite = mmdb.write(tmp_path / "c.mmdb", {"203.0.113.0/24": {"country": {"iso_code": "pk"}}})
    registered = mmdb.write(
        tmp_path / "r.mmdb", {"203.0.113.0/24": {"registered_country": {"iso_code": "IR"}}}
    )
    assert Attributor(None, geolite).lookup(PROBE_V4) == Network(None, None, "PK")
    assert Attributor(None, registered).lookup(PROBE_V4).cc == "IR"
    assert not Attributor(None, geolite).lookup("8.8.8.8").attributed
    assert not Attributor(None, geolite).lookup("not an address").attributed


@pytest.mark.parametrize("ipv4_only_first", [False, True])
def test_an_ipv4_only_file_keeps_what_the_other_found(tmp_path: Path, ipv4_only_first: bool) -> None:
    """An IPv6 submitter looked up in an IPv4-only file (maxminddb raises ValueError) lost the ASN
    the other file had given: the measurement was stored unattributed."""
    asn = mmdb.write(
        tmp_path / "a.mmdb", {"2001:db8::/32": {"autonomous_system_number": 64501}, "203.0.113.0/24": {}}
    )
    cc = mmdb.write(tmp_path / "c.mmdb", {"203.0.113.0/24": {"country": {"iso_code": "PK"}}}, ip_version=4)
    dbs = (cc, asn) if ipv4_only_first else (asn, cc)
    assert Attributor(*dbs).lookup("2001:db8::1") == Network("AS64501", None, None)
    assert Attributor(*dbs).lookup("203.0.113.9").cc == "PK"
    assert not Attributor(*dbs).lookup("not an address").attributed


def test_bad_db_is_a_user_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mmdb"
    bad.write_bytes(b"not a database")
    with pytest.raises(UserError):
        Attributor(bad)


async def test_collector_trusts_its_own_attribution(
    tmp_path: Path, geo_dbs: tuple[Path, Path], real_measurements: list[dict[str, Any]]
) -> None:
    m = web(real_measurements)[0]
    m["probe_asn"], m["probe_cc"] = "AS1", "US"
    settings = Settings(store=str(tmp_path / "m.duckdb"), asn_db=geo_dbs[0], country_db=geo_dbs[1], rate=0)
    for client, asn, cc, name in (
        (PROBE_V4, "AS64501", "PK", "Test Net"),
        (PROBE_V6, "AS64502", "DE", "Six Net"),
        (OTHER, "AS1", "IR", m["probe_network_name"]),
    ):
        async with collector(settings, client=client) as (_, http):
            uid = (
                await http.post(
                    "/api/v1/measurements",
                    content=__import__("orjson").dumps(
                        {**m, "measurement_start_time": f"2026-01-0{len(client) % 9 + 1} 00:00:00"}
                    ),
                )
            ).json()["measurement_uids"][0]
            stored = (await http.get(f"/api/v1/measurement/{uid}")).json()
            assert (stored["probe_asn"], stored["probe_cc"], stored["probe_network_name"]) == (asn, cc, name)
            assert stored.get("x_probe_cc_claimed") == "US"
            assert stored.get("x_probe_asn_claimed") == (None if asn == "AS1" else "AS1")
            assert stored.get("x_probe_network_name_claimed") == (
                None if name == m["probe_network_name"] else m["probe_network_name"]
            )
            row = (await http.get("/api/v1/measurements", params={"probe_cc": cc})).json()["results"][0]
            assert row["x_probe_cc_claimed"] == "US"
            # the ASN of OTHER is the probe's claim: the row is not attributed, and says which part was
            assert row["attributed"] is (client != OTHER)
            assert stored.get("x_unattributed") is (True if client == OTHER else None)
            assert stored.get("x_attributed") == (["probe_cc"] if client == OTHER else None)


@pytest.mark.parametrize(
    ("client", "sent", "stored_asn", "column_asn", "claimed"),
    [
        # the databases' ASN (AS64501) replaces another spelling of it, which is kept as sent
        (PROBE_V4, "AS064501", "AS64501", "AS64501", "AS064501"),
        # a country alone found: the ASN stays the claim, as the probe spelt it
        (OTHER, "AS0105", "AS0105", "AS105", None),
    ],
)
async def test_the_probes_spelling_of_its_asn_is_kept(
    tmp_path: Path,
    geo_dbs: tuple[Path, Path],
    real_measurements: list[dict[str, Any]],
    client: str,
    sent: str,
    stored_asn: str,
    column_asn: str,
    claimed: str | None,
) -> None:
    """Attribution rewrote a claimed ``AS0105`` as ``AS105`` in the stored measurement when only the
    country was found, and dropped a claimed ``AS064501`` that the databases' AS64501 replaced."""
    m = {**web(real_measurements)[0], "probe_asn": sent}
    settings = Settings(store=str(tmp_path / "m.duckdb"), asn_db=geo_dbs[0], country_db=geo_dbs[1], rate=0)
    async with collector(settings, client=client) as (_, http):
        r = await http.post("/api/v1/measurements", content=orjson.dumps(m))
        uid = r.json()["measurement_uids"][0]
        stored = (await http.get(f"/api/v1/measurement/{uid}")).json()
        assert (stored["probe_asn"], stored.get("x_probe_asn_claimed")) == (stored_asn, claimed)
        row = (await http.get("/api/v1/measurements")).json()["results"][0]
        assert (row["probe_asn"], row["x_probe_asn_claimed"]) == (column_asn, None)


async def test_no_db_keeps_the_claim_marked_unattributed(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    m = web(real_measurements)[0]
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (_, http):
        uid = (await http.post("/api/v1/measurements", content=__import__("orjson").dumps(m))).json()[
            "measurement_uids"
        ][0]
        stored = (await http.get(f"/api/v1/measurement/{uid}")).json()
        assert stored["probe_asn"] == m["probe_asn"] and stored["x_unattributed"] is True
        row = (await http.get("/api/v1/measurements")).json()["results"][0]
        assert row["attributed"] is False and row["probe_asn"] == m["probe_asn"]


@pytest.mark.parametrize(("claimed_asn", "kept"), [("AS64509", "Claimed Net"), ("AS1", None)])
async def test_a_network_the_databases_know_without_a_name(
    tmp_path: Path, real_measurements: list[dict[str, Any]], claimed_asn: str, kept: str | None
) -> None:
    """An ASN record with no organisation: the probe's name was replaced by none and said found
    (``x_attributed`` listed ``probe_network_name``). The probe's name stays if it named that
    same network, and is kept as a claim either way."""
    asn_db = mmdb.write(tmp_path / "a.mmdb", {"203.0.113.0/24": {"autonomous_system_number": 64509}})
    m = {**web(real_measurements)[0], "probe_asn": claimed_asn, "probe_network_name": "Claimed Net"}
    async with collector(
        Settings(store=str(tmp_path / "m.duckdb"), asn_db=asn_db, rate=0), client=PROBE_V4
    ) as (
        _,
        http,
    ):
        uid = (await http.post("/api/v1/measurements", content=orjson.dumps(m))).json()["measurement_uids"][0]
        stored = (await http.get(f"/api/v1/measurement/{uid}")).json()
    assert (stored["probe_asn"], stored["probe_network_name"]) == ("AS64509", kept)
    assert stored.get("x_probe_network_name_claimed") == (None if kept else "Claimed Net")
    assert stored["x_attributed"] == ["probe_asn"] and stored["x_unattributed"] is True  # no country file


@pytest.mark.parametrize(
    ("via", "sent"),
    [
        ("peer", "::ffff:203.0.113.77"),  # a dual-stack socket's peer
        ("proxy", "::ffff:203.0.113.77"),  # a dual-stack proxy's X-Forwarded-For
        ("proxy", "[::FFFF:CB00:714D]:5060"),
    ],
)
async def test_an_ipv4_mapped_submitter_is_its_ipv4_address(
    tmp_path: Path,
    geo_dbs: tuple[Path, Path],
    real_measurements: list[dict[str, Any]],
    via: str,
    sent: str,
) -> None:
    """An IPv4 submitter written as an IPv4-mapped IPv6 address was looked up as that IPv6
    address: unattributed where a file does not alias ``::ffff:0:0/96`` to its IPv4 tree (as this
    test's files, and some vendors', do not) though the same address written plainly was
    attributed. It is attributed, and scrubbed in every spelling, as its IPv4 address."""
    m = web(real_measurements)[0]
    m["probe_asn"], m["probe_cc"] = "AS1", "US"
    m["test_keys"]["x_seen"] = f"from ::ffff:{PROBE_V4}, {PROBE_V4} and ::ffff:cb00:714d"
    settings = Settings(
        store=str(tmp_path / "m.duckdb"),
        asn_db=geo_dbs[0],
        country_db=geo_dbs[1],
        rate=0,
        trusted_proxies="127.0.0.1" if via == "proxy" else None,
    )
    headers = {"X-Forwarded-For": sent} if via == "proxy" else {}
    async with collector(settings, client="127.0.0.1" if via == "proxy" else sent) as (_, http):
        r = await http.post("/api/v1/measurements", content=orjson.dumps(m), headers=headers)
        stored = (await http.get(f"/api/v1/measurement/{r.json()['measurement_uids'][0]}")).json()
    assert (stored["probe_asn"], stored["probe_cc"], stored["probe_network_name"]) == (
        "AS64501",
        "PK",
        "Test Net",
    )
    seen = stored["test_keys"]["x_seen"]
    assert PROBE_V4 not in seen and "cb00" not in seen.lower() and seen.count("[scrubbed]") == 3, seen
