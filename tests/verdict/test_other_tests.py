"""The anomaly/failure rules of the OONI tests other than web_connectivity (verdict.other_tests):
the tables as data, one synthetic case per rule, odd shapes, and OONI's own labels of the real
measurements (../shared/data)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reachwatch import compiled
from reachwatch.collector.analysis import NOT_JUDGED, verdict_values
from reachwatch.verdict import other_tests
from reachwatch.verdict.other_tests import GENERIC, NO_TEST_KEYS, TABLES, decide, every_rule

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "ooni"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"shared data not found at {DATA}")


def m(test_name: str, **keys: Any) -> dict[str, Any]:
    """A measurement of ``test_name`` with ``keys`` as its test_keys, but those under ``__top__``,
    which go to its top level."""
    top = keys.pop("__top__", {})
    return {
        "test_name": test_name,
        "input": None,
        **(top if isinstance(top, dict) else {}),
        "test_keys": keys,
    }


# -- the tables --------------------------------------------------------------------------------


def test_rule_ids_unique_named_after_their_test_and_commented() -> None:
    rules = every_rule()
    ids = [r.rule_id for r in rules]
    assert len(ids) == len(set(ids))
    assert NOT_JUDGED not in ids  # the web engine's id is never the one stored
    for name, table in TABLES.items():
        assert len({r.rule_id for r in table}) == len(table), name
        prefix = table[0].rule_id.split(".")[0]
        assert name.replace("_", "") == prefix.replace("_", ""), name  # stun_reachability too
        assert all(r.rule_id.startswith(prefix + ".") for r in table), name
    for rule in rules:
        assert rule.comment.strip() and "\n" not in rule.comment, rule.rule_id
    assert {r.rule_id for r in GENERIC} | {NO_TEST_KEYS.rule_id} <= set(ids)


def test_every_table_ends_with_a_rule_that_always_holds() -> None:
    for table in (*TABLES.values(), GENERIC):
        for keys in ({}, {"failure": "x"}, {"anything": [1, None]}):
            assert table[-1].condition({"test_keys": keys}, keys), table[-1].rule_id


def test_the_tests_asked_for_have_a_table() -> None:
    scored = {
        "telegram",
        "whatsapp",
        "facebook_messenger",
        "signal",
        "tor",
        "vanilla_tor",
        "torsf",
        "http_header_field_manipulation",
        "http_invalid_request_line",
        "stunreachability",
        "riseupvpn",
        "psiphon",
        "tcp_connect",
        "dash",
        "meek_fronted_requests_test",
        "openvpn",
        "browser_web",
        "http_requests",
        "ndt",
        "dns_consistency",
    }  # fmt: skip  (OONI's fastpath: score_measurement)
    assert scored == set(TABLES)
    assert "web_connectivity" not in TABLES


# -- one synthetic case per rule ---------------------------------------------------------------

FB = ("b_api", "b_graph", "edge", "external_cdn", "scontent_cdn", "star")
OK_FB = {f"facebook_{e}_dns_consistent": True for e in (*FB, "stun")}
OK_FB |= {f"facebook_{e}_reachable": True for e in FB}


def _tcp(*results: bool) -> list[dict[str, Any]]:
    return [{"ip": "192.0.2.1", "port": 443, "status": {"success": r, "failure": None}} for r in results]


def _req(url: str | None, failure: str | None = None) -> dict[str, Any]:
    return {"request": {} if url is None else {"url": url}, "failure": failure}


WA_WEB, WA_REG = "https://web.whatsapp.com/", "https://v.whatsapp.net/v2/register"
TG_WEB = "https://web.telegram.org/"
SIGNAL_OK_TOP = {
    "test_version": "0.2.5",
    "measurement_start_time": "2024-03-01 10:00:00",
    "annotations": {"engine_version": "3.21.0"},
}
HHFM_SENT = {"Host": "example.com", "Accept": "*/*"}
HHFM_ECHO = json.dumps({"headers_dict": {"Host": ["example.com"], "Accept": ["*/*"]}})
TOR_EVENTS = {"network_events": []}
TOP = "__top__"  # a case's keys under it go to the measurement's top level

CASES: list[tuple[str, dict[str, Any], str]] = [
    ("telegram", {"requests": [_req(None)]}, "telegram.malformed"),
    ("telegram", {"telegram_web_status": "blocked", "tcp_connect": _tcp(True)}, "telegram.web-blocked"),
    ("telegram", {"tcp_connect": _tcp(False, False, True), "requests": [_req("http://149.154.175.50/")]},
     "telegram.endpoints-blocked"),
    ("telegram", {}, "telegram.endpoints-blocked"),  # nothing measured: OONI's 0.5 + 0.5
    ("telegram", {"telegram_web_status": "ok", "tcp_connect": _tcp(True, True),
                  "requests": [_req("http://149.154.175.50/"), _req(TG_WEB, "generic_timeout_error")]}, "telegram.ok"),
    ("whatsapp", {"whatsapp_web_failure": "unknown_failure 'ascii' codec", "requests": [_req(WA_WEB)]},
     "whatsapp.probe-bug"),
    ("whatsapp", {"requests": []}, "whatsapp.no-requests"),
    ("whatsapp", {"requests": [_req(WA_WEB)]}, "whatsapp.incomplete"),
    ("whatsapp", {"requests": [_req(WA_WEB, "connection_reset"), _req(WA_REG)],
                  "registration_server_failure": "unknown_failure: x"}, "whatsapp.blocked-unknown-failure"),
    ("whatsapp", {"requests": [_req(WA_WEB), _req(WA_REG, "generic_timeout_error")]}, "whatsapp.blocked"),
    ("whatsapp", {"requests": [_req(WA_WEB), _req(WA_REG)]}, "whatsapp.no-endpoints"),
    ("whatsapp", {"requests": [_req(WA_WEB), _req(WA_REG)], "tcp_connect": _tcp(False),
                  "whatsapp_endpoints_failure": "unknown_failure"}, "whatsapp.endpoints-blocked-unknown-failure"),
    ("whatsapp", {"requests": [_req(WA_WEB), _req(WA_REG)], "tcp_connect": _tcp(False, False)},
     "whatsapp.endpoints-blocked"),
    ("whatsapp", {"requests": [_req(WA_WEB), _req(WA_REG)], "tcp_connect": _tcp(True),
                  "whatsapp_web_failure": "unknown_failure: y"}, "whatsapp.unknown-failure"),
    ("whatsapp", {"requests": [_req(WA_WEB), _req(WA_REG)], "tcp_connect": _tcp(False, True)}, "whatsapp.ok"),
    ("facebook_messenger", {**OK_FB, "facebook_dns_blocking": True, "facebook_tcp_blocking": False},
     "facebook_messenger.all-reachable"),
    ("facebook_messenger", {**OK_FB, "facebook_edge_reachable": False, "facebook_tcp_blocking": True},
     "facebook_messenger.blocked"),
    ("facebook_messenger", {**OK_FB, "facebook_star_reachable": False}, "facebook_messenger.ok"),  # one sign
    ("signal", {"signal_backend_status": "ok", TOP: {**SIGNAL_OK_TOP, "test_version": "0.2.4"}},
     "signal.unreliable-version"),
    ("signal", {"signal_backend_status": "blocked", "failure": "generic_timeout_error", "failed_operation": "x",
                TOP: SIGNAL_OK_TOP}, "signal.blocked-failed"),
    ("signal", {"signal_backend_status": "blocked", "failure": None, "failed_operation": None, TOP: SIGNAL_OK_TOP},
     "signal.blocked"),
    ("signal", {"signal_backend_status": "ok", TOP: SIGNAL_OK_TOP}, "signal.failed"),  # no failure keys
    ("signal", {"signal_backend_status": "ok", "failure": None, "failed_operation": None, TOP: SIGNAL_OK_TOP},
     "signal.ok"),
    ("tor", {"targets": []}, "tor.no-result"),
    ("tor", {"targets": {"a": {"failure": "generic_timeout_error", **TOR_EVENTS},
                         "b": {"failure": "eof_error", **TOR_EVENTS}, "c": {"failure": None, **TOR_EVENTS}}},
     "tor.targets-blocked"),
    ("tor", {"targets": {"a": {"failure": "eof_error", **TOR_EVENTS}, "b": {"failure": None, **TOR_EVENTS},
                         "c": {"failure": False, **TOR_EVENTS}}}, "tor.ok"),
    ("vanilla_tor", {"tor_progress": 100}, "vanilla_tor.no-logs"),
    ("vanilla_tor", {"tor_logs": ["Bootstrapped 100% (done): Done"], "tor_progress": 0}, "vanilla_tor.ok"),
    ("vanilla_tor", {"tor_log": "Bootstrapped 80%", "tor_progress": "80"}, "vanilla_tor.bootstrap-failed"),
    ("torsf", {TOP: {"software_name": "ooniprobe-android-unattended", "software_version": "3.8.3"}},
     "torsf.unreliable-version"),
    ("torsf", {"failure": "generic_timeout_error"}, "torsf.bootstrap-failed"),
    ("torsf", {"failure": None, "bootstrap_time": 12.5}, "torsf.ok"),
    ("psiphon", {"failure": "eof_error"}, "psiphon.failed-no-resolver"),
    ("psiphon", {"failure": "eof_error", TOP: {"resolver_ip": "192.0.2.53"}}, "psiphon.failed"),
    ("psiphon", {"failure": None, TOP: {"resolver_ip": "192.0.2.53"}}, "psiphon.no-bootstrap"),
    ("psiphon", {"failure": None, "bootstrap_time": 3.1}, "psiphon.no-resolver"),
    ("psiphon", {"failure": None, "bootstrap_time": 3.1, TOP: {"resolver_ip": "192.0.2.53"}}, "psiphon.ok"),
    ("http_header_field_manipulation", {"requests": [{"request": {"headers": HHFM_SENT}, "response": None}]},
     "http_header_field_manipulation.no-response"),
    ("http_header_field_manipulation", {"requests": [{"request": {"headers": {**HHFM_SENT, "Accept": "text/html"}},
                                                      "response": {"body": HHFM_ECHO}}]},
     "http_header_field_manipulation.tampering"),
    ("http_header_field_manipulation", {"requests": [{"request": {"headers": HHFM_SENT}, "response": {"body": None}}]},
     "http_header_field_manipulation.tampering"),  # OONI: an empty answer is total tampering
    ("http_header_field_manipulation", {"requests": [{"request": {"headers": {**HHFM_SENT, "Connection": "close"}},
                                                      "response": {"body": HHFM_ECHO}}]},
     "http_header_field_manipulation.ok"),
    ("http_invalid_request_line", {"sent": [], "received": []}, "http_invalid_request_line.no-result"),
    ("http_invalid_request_line", {"sent": ["GET / HTTP/1.1"], "received": ["HTTP/1.1 403"]},
     "http_invalid_request_line.tampering"),
    ("http_invalid_request_line", {"sent": ["XXX / HTTP/1.1"], "received": ["XXX / HTTP/1.1"], "tampering": True},
     "http_invalid_request_line.ok"),  # the probe's tampering flag is not read
    ("tcp_connect", {"connection": "success"}, "tcp_connect.ok"),
    ("tcp_connect", {"connection": "generic_timeout_error"}, "tcp_connect.failed"),
    ("dash", {}, "dash.no-result"),
    ("dash", {"failure": None, "simple": {}}, "dash.ok"),
    ("dash", {"failure": "connect_error"}, "dash.failed"),
    ("meek_fronted_requests_test", {"requests": []}, "meek_fronted_requests_test.no-requests"),
    ("meek_fronted_requests_test", {"requests": [{"response": {"code": 403}}]}, "meek_fronted_requests_test.blocked"),
    ("meek_fronted_requests_test", {"requests": [{"response": {"code": 200, "headers": {"Server": "ECAcc (x)"}}}]},
     "meek_fronted_requests_test.ok"),
    ("openvpn", {"success": False}, "openvpn.failed"),
    ("openvpn", {}, "openvpn.no-result"),
    ("openvpn", {"success": True}, "openvpn.ok"),
    ("browser_web", {"result": "ok"}, "browser_web.ok"),
    ("browser_web", {"result": "error"}, "browser_web.error"),
    ("browser_web", {"result": None}, "browser_web.no-result"),
    ("stunreachability", {"failure": "generic_timeout_error"}, "stunreachability.failed"),
    ("stunreachability", {"failure": None}, "stunreachability.ok"),
    ("http_requests", {"body_length_match": True, "headers_match": None}, "http_requests.no-result"),
    ("http_requests", {"body_length_match": False, "headers_match": True}, "http_requests.differs"),
    ("http_requests", {"body_length_match": True, "headers_match": True}, "http_requests.ok"),
    ("ndt", {"failure": "compute_advanced_stats_error"}, "ndt.not-scored"),
    ("dns_consistency", {}, "dns_consistency.not-scored"),
    ("riseupvpn", {"api_status": "blocked"}, "riseupvpn.not-scored"),
    ("dnscheck", {"lookups": {}}, "other.not-scored"),
    ("urlgetter", {"failure": None}, "other.not-scored"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("test_name", "keys", "rule_id"), CASES, ids=[f"{c[2]}-{i}" for i, c in enumerate(CASES)]
)
def test_each_rule(test_name: str, keys: dict[str, Any], rule_id: str) -> None:
    rule = decide(m(test_name, **keys))
    assert rule.rule_id == rule_id
    b, acc, t, x_rule, anomaly, failure = verdict_values(m(test_name, **keys))
    assert (b, acc, t, x_rule, anomaly, failure) == (None, None, None, rule_id, rule.anomaly, rule.failure)


def test_every_rule_has_a_case() -> None:
    covered = {rule_id for *_, rule_id in CASES} | {NO_TEST_KEYS.rule_id}
    assert {r.rule_id for r in every_rule()} - covered == set()


@pytest.mark.parametrize("test_keys", [None, [], "x", 3, True], ids=repr)
@pytest.mark.parametrize("test_name", ["telegram", "tor", "ndt", None, 7])
def test_no_test_keys_is_a_failure(test_name: Any, test_keys: Any) -> None:
    measurement = {"test_name": test_name, "test_keys": test_keys}
    if test_name is None:
        del measurement["test_name"]
    assert decide(measurement) is NO_TEST_KEYS
    assert verdict_values(measurement)[3:] == ("other.no-test-keys", False, True)


def test_a_web_connectivity_measurement_is_not_judged_here() -> None:
    """The web engine's rules judge it: an empty one is its own ``input.no-test-keys``."""
    assert verdict_values({"test_name": "web_connectivity", "test_keys": None})[3:] == (
        "input.no-test-keys",
        False,
        True,
    )


def test_a_rule_that_raises_leaves_no_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    if compiled.running_compiled():
        pytest.skip("compiled modules call each other directly: a patched function is not seen")

    def broken(measurement: dict[str, Any]) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(other_tests, "decide", broken)
    assert verdict_values(m("telegram"))[3:] == (None, False, True)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
KEYS = sorted(
    {k for _, keys, _ in CASES for k in keys} | {"targets", "lookups", "tampering", "sent", "received"}
)


@settings(max_examples=600, deadline=None)
@given(
    st.sampled_from([*sorted(TABLES), "ndt"]),
    st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), JSON, max_size=6),
)
def test_any_shape_of_test_keys_gets_a_rule(test_name: str, keys: dict[str, Any]) -> None:
    rule = decide({"test_name": test_name, "test_keys": keys})
    assert rule in every_rule()
    verdict_values({"test_name": test_name, "test_keys": keys})


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(CASES), st.data())
def test_a_value_replaced_anywhere_gets_a_rule(
    case: tuple[str, dict[str, Any], str], data: st.DataObject
) -> None:
    test_name, keys, _ = case
    keys = json.loads(json.dumps(keys))
    node: Any = keys
    while isinstance(node, dict) and node:  # descend, then replace one value by arbitrary JSON
        key = data.draw(st.sampled_from(sorted(node)))
        if isinstance(node[key], dict) and node[key] and data.draw(st.booleans()):
            node = node[key]
            continue
        node[key] = data.draw(JSON)
        break
    assert decide(m(test_name, **keys)) in every_rule()


# -- OONI's own labels of the real measurements ------------------------------------------------

#: Where we disagree with OONI's label, and why.
DISAGREE: dict[tuple[str, int], str] = {}  # none: the rules follow OONI's fastpath


def _labelled() -> list[tuple[str, int, dict[str, Any], dict[str, str]]]:
    with (DATA / "index.csv").open(newline="") as handle:
        index = {(r["file"], int(r["line"])): r for r in csv.DictReader(handle)}
    out = []
    for name in ("measurements_real.jsonl", "measurements_spec_examples.jsonl"):
        with (DATA / name).open() as handle:
            for number, line in enumerate(handle, start=1):
                measurement = json.loads(line)
                if measurement.get("test_name") != "web_connectivity":
                    out.append((name, number, measurement, index[(name, number)]))
    return out


def _flag(text: str) -> bool | None:
    return {"True": True, "False": False, "true": True, "false": False}.get(text)


@pytest.mark.shared_data
@needs_data
def test_the_flags_agree_with_oonis_labels() -> None:
    compared, disagreed = 0, []
    for name, number, measurement, row in _labelled():
        *_, rule_id, anomaly, failure = verdict_values(measurement)
        assert rule_id is not None and rule_id != NOT_JUDGED
        labels = (_flag(row["api_anomaly"]), _flag(row["api_failure"]))
        if labels == (None, None):
            continue
        compared += 1
        if (anomaly, failure) != labels:
            disagreed.append((name, number))
            why = f"{name}:{number} {measurement['test_name']} {rule_id}: ours {(anomaly, failure)}, OONI {labels}"
            assert (name, number) in DISAGREE, why
    assert compared == 11  # the labelled non-web rows of index.csv
    assert sorted(disagreed) == sorted(DISAGREE)


@pytest.mark.shared_data
@needs_data
def test_the_blocked_services_are_anomalies() -> None:
    """The lines where OONI itself says the service is blocked, and a few it says are fine."""
    got = {(name, number): verdict_values(meas)[3:] for name, number, meas, _ in _labelled()}
    real, spec = "measurements_real.jsonl", "measurements_spec_examples.jsonl"
    assert got[(real, 26)] == ("facebook_messenger.blocked", True, False)
    assert got[(real, 28)] == ("signal.blocked", True, False)
    assert got[(real, 30)] == ("whatsapp.blocked", True, False)
    assert got[(real, 31)] == ("telegram.web-blocked", True, False)
    assert got[(real, 32)] == ("http_header_field_manipulation.tampering", True, False)
    assert got[(real, 7)] == ("http_invalid_request_line.tampering", True, False)  # a blockpage came back
    assert got[(real, 16)] == ("vanilla_tor.bootstrap-failed", True, False)
    assert got[(real, 23)] == ("ndt.not-scored", False, False)
    assert got[(real, 39)] == ("other.not-scored", False, True)  # urlgetter: OONI does not score it
    for number, rule_id in ((4, "vanilla_tor.ok"), (5, "facebook_messenger.ok"), (6, "telegram.ok"),
                            (8, "torsf.ok")):  # fmt: skip
        assert got[(spec, number)] == (rule_id, False, False)
