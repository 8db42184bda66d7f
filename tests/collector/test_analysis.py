"""The analysis flags stored at ingest for tests other than web_connectivity, and the domain column."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from collector.conftest import MINIMAL, collector
from reachwatch.collector.analysis import NOT_JUDGED, domain, verdict_values
from reachwatch.collector.config import Settings


def measurement(test_name: str, **keys: Any) -> dict[str, Any]:
    return {"test_name": test_name, "input": None, "test_keys": keys}


def test_another_test_is_judged_by_its_own_rules() -> None:
    """Its flags come from verdict.other_tests (after OONI's fastpath), and x_rule names the rule
    that decided (never the web engine's "not web_connectivity"); tests/verdict/test_other_tests.py
    checks each rule."""
    blocked = measurement("telegram", telegram_web_status="blocked", tcp_connect=[])
    assert verdict_values(blocked) == (None, None, None, "telegram.web-blocked", True, False)
    signal = measurement("signal", signal_backend_status="blocked", failure=None, failed_operation=None)
    signal |= {"test_version": "0.2.5", "measurement_start_time": "2024-03-01 10:00:00"}
    signal["annotations"] = {"engine_version": "3.21.0"}
    assert verdict_values(signal)[3:] == ("signal.blocked", True, False)
    rule = verdict_values(measurement("telegram"))[3]
    assert rule != NOT_JUDGED


def test_a_test_oonis_fastpath_does_not_score_is_a_failure() -> None:
    *_, rule, anomaly, failure = verdict_values(measurement("dnscheck", failure=None))
    assert (rule, anomaly, failure) == ("other.not-scored", False, True)
    *_, rule, anomaly, failure = verdict_values(measurement("ndt", failure="generic_timeout_error"))
    assert (rule, anomaly, failure) == ("ndt.not-scored", False, False)  # scored, with no flag
    *_, rule, anomaly, failure = verdict_values({"test_name": "ndt", "test_keys": None})
    assert (rule, anomaly, failure) == ("other.no-test-keys", False, True)


def test_a_web_connectivity_measurement_without_a_verdict_is_a_failure() -> None:
    *_, anomaly, failure = verdict_values(measurement("web_connectivity"))
    assert (anomaly, failure) == (False, True)


def test_the_domain_of_a_bare_host_input_is_the_host() -> None:
    """dns_consistency, quicping, urlgetter... give a host as input (``google.com``): its domain
    was empty, so ``domain=google.com`` did not find them and the aggregation put them with the
    measurements that have no input."""
    assert domain("google.com") == "google.com"
    assert domain("Bücher.DE.") == "xn--bcher-kva.de"
    assert domain("8.8.8.8:53") == "8.8.8.8"
    assert domain("http://Example.ORG./a") == "example.org"
    for no_host in ("", "obfs4 192.0.2.1:443 cert=x", "/just/a/path", "user@host", "a b"):
        assert domain(no_host) == "", no_host


def test_a_host_longer_than_a_domain_name_has_no_domain() -> None:
    """A host of more than 253 characters names no domain: stored as one, it made every summary
    the report and the dashboard read from the store refuse the whole table (one measurement
    posted with such an input turned /dashboard/ into a 400 for everyone)."""
    longest = ".".join(["a" * 63] * 3 + ["b" * 61])  # 253 characters
    assert domain(f"http://{longest}/") == longest
    assert domain(f"http://{longest}./") == longest
    for too_long in (f"http://{'a' * 300}.com/", f"http://x{longest}/", "a" * 254, f"https://[{'a' * 300}]/"):
        assert domain(too_long) == "", too_long


async def test_a_measurement_of_an_overlong_host_leaves_the_dashboard_readable(tmp_path: Path) -> None:
    m = dict(MINIMAL)
    lines = [orjson.dumps({**m, "input": url}) for url in ("http://example.com/", f"http://{'a' * 300}.com/")]
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (_, http):
        assert (await http.post("/api/v1/measurements", content=b"\n".join(lines))).status_code == 200
        page = await http.get("/dashboard/")
        assert page.status_code == 200, page.text[-500:]


async def test_a_bare_host_input_is_found_by_the_domain_filter(
    tmp_path: Path, real_measurements: list[dict[str, Any]]
) -> None:
    hosts = [m for m in real_measurements if m.get("input") in ("google.com", "ooni.org")]
    assert len(hosts) >= 2, "the shared data has dns_consistency/urlgetter measurements of a host"
    async with collector(Settings(store=str(tmp_path / "m.duckdb"), rate=0)) as (_, http):
        r = await http.post("/api/v1/measurements", content=b"\n".join(orjson.dumps(m) for m in hosts))
        assert r.status_code == 200, r.text
        for host in ("google.com", "GOOGLE.com.", "ooni.org"):
            expected = sum(m["input"] == host.lower().rstrip(".") for m in hosts)
            listed = (await http.get("/api/v1/measurements", params={"domain": host})).json()
            assert listed["metadata"]["count"] == expected, host
