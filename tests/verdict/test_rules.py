"""The rule table is data: checked here for ids, comments, vocabulary and test coverage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_techniques import CENSORSHIP, NOT_CENSORSHIP
from verdict_builders import hop, measurement, redirected, single

import reachwatch.verdict as verdict
from reachwatch.verdict import REDIRECT_SUFFIX, RULES, TECHNIQUES, decide
from reachwatch.verdict.rules import FINGERPRINT_RULES

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "ooni"


def test_public_api() -> None:
    assert set(verdict.__all__) == {"REDIRECT_SUFFIX", "RULES", "TECHNIQUES", "Rule", "Verdict", "decide"}


def test_rule_ids_unique_and_commented() -> None:
    ids = [r.rule_id for r in RULES]
    assert len(ids) == len(set(ids))
    for rule in RULES:
        assert rule.comment.strip(), rule.rule_id
        assert rule.technique is None or rule.technique in TECHNIQUES, rule.rule_id
        assert rule.blocking in (None, False, "dns", "tcp_ip", "http-failure", "http-diff")
        assert rule.accessible in (None, True, False)
    assert RULES[-1].rule_id == "undecided"


def _every_case() -> list[dict[str, Any]]:
    """Measurements that together exercise every rule."""
    cases = builder_cases()
    if DATA.is_dir():
        with (DATA / "measurements_qa_emulated.jsonl").open() as handle:
            cases += [json.loads(line) for line in handle]
    return cases


def builder_cases() -> list[dict[str, Any]]:
    """The builder-made measurements (no shared data): every technique plus the odd cases."""
    cases = []
    for _, schemes, probe, ctrl, *_ in CENSORSHIP + NOT_CENSORSHIP:
        for scheme in schemes:
            cases.append(single(f"{scheme}://site.example/", probe, ctrl))
            cases.append(redirected(f"{scheme}://site.example/", probe, ctrl))
    url = "http://site.example/"
    cases += [
        {"test_name": "tor", "test_keys": {}},
        {"test_name": "web_connectivity", "test_keys": None},
        measurement([hop(url, 0)], url, None, control_failure="connection_refused"),
        single(url, {"http_failure": "http_invalid_redirect_location_host", "code": 302}, {}),
        single("https://site.example/", {"tls_failure": "ssl_failed_handshake"}, {}),
        single("https://site.example/", {"tls_failure": "ssl_unknown_authority"}, {}),
        single(url, {"dns_failure": "dns_no_answer"}, {"addrs": ()}),
        single(
            url, {"addrs": ("127.0.0.1",), "tcp_failure": "connection_refused"}, {"addrs": ("127.0.0.1",)}
        ),
    ]
    # the page fetch ended but the control had no HTTP part
    m = single(url, {}, {})
    del m["test_keys"]["control"]["http_request"]
    cases.append(m)
    # TLS / TCP / DNS failures where the control has neither that step nor the page
    for probe in ({"tcp_failure": "connection_refused"}, {"dns_failure": "dns_nxdomain_error"}):
        m = single(url, probe, {})
        ctrl = m["test_keys"]["control"]
        del ctrl["http_request"]
        ctrl["tcp_connect"], ctrl["dns"] = {}, None
        cases.append(m)
    m = single("https://site.example/", {"tls_failure": "connection_reset"}, {})
    del m["test_keys"]["control"]["http_request"]
    m["test_keys"]["control"]["tls_handshake"] = {}
    cases.append(m)
    # a connect timeout after a redirect, with no control for that hop: OONI's "http-failure"
    m = redirected(url, {"addrs": ("198.18.0.20",), "tcp_failure": "generic_timeout_error"}, {})
    m["test_keys"]["x_controls"] = []
    cases.append(m)
    m = redirected(url, {"addrs": ("198.18.0.20",), "tcp_failure": "connection_refused"}, {})
    m["test_keys"]["x_controls"] = []
    cases.append(m)
    # the name resolves to loopback for the probe and the control alike; nothing was connected to
    m = single(url, {"addrs": ("127.0.0.1",)}, {"addrs": ("127.0.0.1",)})
    for key in ("tcp_connect", "tls_handshakes", "requests"):
        m["test_keys"][key] = []
    cases.append(m)
    # nothing at all observed
    cases.append(measurement([], url, single(url, {}, {})["test_keys"]["control"]))
    # a page for the probe, while the control's fetch timed out: nothing to compare it with
    cases.append(single(url, {}, {"http_failure": "generic_timeout_error"}))
    return cases


def test_every_rule_has_a_case() -> None:
    seen = {decide(m).x_rule.removesuffix(REDIRECT_SUFFIX) for m in _every_case()}
    missing = [r.rule_id for r in RULES if r.rule_id not in seen]
    assert not missing, missing


@pytest.mark.parametrize(
    "bad",
    [
        None,
        3,
        "x",
        [],
        {
            "test_name": "web_connectivity",
            "test_keys": {
                "queries": 5,
                "tcp_connect": [1, None, {"ip": 3}],
                "requests": [{"response": "no"}],
                "control": [1],
            },
        },
    ],
)
def test_malformed_never_raises(bad: Any) -> None:
    v = decide(bad)
    assert v.x_rule


def test_event_kinds_complete() -> None:
    """first_match skips when() rules by event kind: every kind must be listed."""
    from typing import get_args

    from reachwatch.verdict.rules import EVENT_KINDS
    from reachwatch.verdict.walk import Kind

    assert set(EVENT_KINDS) == set(get_args(Kind))


def _cell(value: object) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else f'"{value}"'


def test_the_docs_list_the_rules_as_they_are() -> None:
    """docs/verdict.md's tables are the rules, in order (a rule added or changed shows there)."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "verdict.md").read_text()
    for i, rule in enumerate(RULES, 1):
        row = f"| {i} | `{rule.rule_id}` | {_cell(rule.blocking)} | {_cell(rule.accessible)} | "
        assert f"{row}{rule.technique or 'null'} | {rule.comment} |" in doc, rule.rule_id
    for rule in FINGERPRINT_RULES.values():
        row = f"`{rule.rule_id}` | {_cell(rule.blocking)} | {_cell(rule.accessible)} | {rule.technique} |"
        assert row in doc, rule.rule_id
