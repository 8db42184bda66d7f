"""Anomaly and failure of the OONI tests other than web_connectivity, as rules (data).

OONI's API counts every measurement as ok, anomaly, confirmed or failure. For the tests other than
web_connectivity its fastpath scores each test from the test's own result keys and sets
``anomaly`` when the score ``blocking_general`` passes 0.5 and ``failure`` when its ``accuracy``
falls under 0.5 (``fastpath/fastpath/core.py`` in ooni/backend, ``score_measurement`` and
``process_measurement``: the facts these rules follow; a row may be both). A test the fastpath does
not score is a failure there (accuracy 0), and so here. One ordered table per test: the first
rule whose condition holds decides, and every table ends with a rule that always holds. A rule
reads the measurement (nearly always its ``test_keys``) in any shape (missing keys, wrong types,
nulls) and never raises. ``docs/verdict.md`` ("Other OONI tests") lists the rules.
"""

from __future__ import annotations

import json
from typing import Any, Final

from reachwatch.verdict.other_apps import FACEBOOK_MESSENGER, SIGNAL, TELEGRAM, WHATSAPP
from reachwatch.verdict.other_rule import OtherRule, always, as_dict, as_list, as_str, requests_of

# -- Tor and friends -----------------------------------------------------------------------------


def _tor_counts(tk: dict[str, Any]) -> tuple[int, int] | None:
    """(blocked, reached) targets; None where OONI has no usable result (no targets, a list, a
    target without ``failure`` or ``network_events``). A target whose failure is false did not run."""
    targets = tk.get("targets")
    if not isinstance(targets, dict) or not targets:
        return None
    blocked = reached = 0
    for target in targets.values():
        if not isinstance(target, dict) or "failure" not in target or "network_events" not in target:
            return None
        failure = target["failure"]
        if failure is None:
            reached += 1
        elif failure is not False:
            blocked += 1
    return (blocked, reached) if blocked + reached else None


def _tor_blocked(tk: dict[str, Any]) -> bool:
    counts = _tor_counts(tk)
    return counts is not None and counts[0] / (counts[0] + counts[1]) > 0.5


TOR: Final[tuple[OtherRule, ...]] = (
    OtherRule("tor.no-result", "No targets, or a target without failure or network_events, or none that ran.",
              lambda m, tk: _tor_counts(tk) is None, anomaly=False, failure=True),
    OtherRule("tor.targets-blocked", "More than half the targets that ran (relays, directory ports, bridges) failed.",
              lambda m, tk: _tor_blocked(tk), anomaly=True, failure=False),
    OtherRule("tor.ok", "Half or more of the targets that ran were reached.", always, anomaly=False, failure=False),
)  # fmt: skip

_BOOTSTRAPPED = ("Bootstrapped 100%: Done", "Bootstrapped 100% (done): Done")


def _tor_logs(tk: dict[str, Any]) -> Any:
    return tk.get("tor_logs") or tk.get("tor_log")


def _tor_progress(tk: dict[str, Any]) -> float:
    try:
        return min(100.0, max(0.0, float(tk.get("tor_progress") or 0)))
    except (TypeError, ValueError):
        return 0.0


def _vanilla_tor_done(m: dict[str, Any], tk: dict[str, Any]) -> bool:
    logs = _tor_logs(tk)
    found = isinstance(logs, (str, list)) and any(line in logs for line in _BOOTSTRAPPED)
    return found or _tor_progress(tk) == 100.0


VANILLA_TOR: Final[tuple[OtherRule, ...]] = (
    OtherRule("vanilla_tor.no-logs", "No tor_logs: no usable result.",
              lambda m, tk: _tor_logs(tk) is None, anomaly=False, failure=True),
    OtherRule("vanilla_tor.ok", "Tor bootstrapped to 100 %.", _vanilla_tor_done, anomaly=False, failure=False),
    OtherRule("vanilla_tor.bootstrap-failed", "Tor did not bootstrap to 100 % (OONI scores 1 - 0.004 x progress).",
              always, anomaly=True, failure=False),
)  # fmt: skip

TORSF: Final[tuple[OtherRule, ...]] = (
    OtherRule("torsf.unreliable-version", "ooniprobe-android 3.8.3, whose torsf measured wrongly: no usable result.",
              lambda m, tk: m.get("software_version") == "3.8.3" and as_str(m.get("software_name")).startswith("ooniprobe-android"),
              anomaly=False, failure=True),
    OtherRule("torsf.bootstrap-failed", "Tor over Snowflake failed (test_keys.failure).",
              lambda m, tk: bool(tk.get("failure")), anomaly=True, failure=False),
    OtherRule("torsf.ok", "Tor over Snowflake bootstrapped.", always, anomaly=False, failure=False),
)  # fmt: skip

PSIPHON: Final[tuple[OtherRule, ...]] = (
    OtherRule("psiphon.failed-no-resolver", "Psiphon failed, and the measurement lacks resolver_ip (OONI: anomaly and failure).",
              lambda m, tk: tk.get("failure") is not None and "resolver_ip" not in m, anomaly=True, failure=True),
    OtherRule("psiphon.failed", "Psiphon failed: to bootstrap, or to fetch through its tunnel (test_keys.failure).",
              lambda m, tk: tk.get("failure") is not None, anomaly=True, failure=False),
    OtherRule("psiphon.no-bootstrap", "No failure and no bootstrap_time: not a valid measurement.",
              lambda m, tk: tk.get("bootstrap_time", 0) == 0, anomaly=False, failure=True),
    OtherRule("psiphon.no-resolver", "The measurement lacks resolver_ip: no usable result for OONI.",
              lambda m, tk: "resolver_ip" not in m, anomaly=False, failure=True),
    OtherRule("psiphon.ok", "Psiphon bootstrapped and fetched through its tunnel.", always, anomaly=False, failure=False),
)  # fmt: skip

# -- middlebox tests -----------------------------------------------------------------------------


def _hhfm_first(tk: dict[str, Any]) -> dict[str, Any] | None:
    requests = tk.get("requests")
    if not isinstance(requests, list) or not requests or not isinstance(requests[0], dict):
        return None
    return requests[0]


def _hhfm_no_response(m: dict[str, Any], tk: dict[str, Any]) -> bool:
    first = _hhfm_first(tk)
    return first is None or first.get("response") is None


def _hhfm_echo(tk: dict[str, Any]) -> set[tuple[str, str]] | None:
    """The headers the helper received, as (name, first value); None if its answer is unreadable."""
    body = as_dict(as_dict(_hhfm_first(tk)).get("response")).get("body")
    if not isinstance(body, (str, bytes)):
        return None
    try:
        echoed = json.loads(body)["headers_dict"]
        return {(str(k), str(v[0])) for k, v in echoed.items()}
    except Exception:
        return None


def _hhfm_changed(m: dict[str, Any], tk: dict[str, Any]) -> bool:
    echoed = _hhfm_echo(tk)
    if echoed is None:
        return True  # OONI: an empty or malformed answer is tampering
    sent_headers = as_dict(as_dict(as_dict(_hhfm_first(tk)).get("request")).get("headers"))
    sent = {(str(k), str(v)) for k, v in sent_headers.items()}
    echoed.discard(("Connection", "close"))  # not always handled correctly
    sent.discard(("Connection", "close"))
    return echoed != sent


HTTP_HEADER_FIELD_MANIPULATION: Final[tuple[OtherRule, ...]] = (
    OtherRule("http_header_field_manipulation.no-response", "No request, or no response to it: no usable result.",
              _hhfm_no_response, anomaly=False, failure=True),
    OtherRule("http_header_field_manipulation.tampering", "The headers the helper received differ from those sent (or its answer is empty or unreadable).",
              _hhfm_changed, anomaly=True, failure=False),
    OtherRule("http_header_field_manipulation.ok", "The helper received the headers as sent.", always, anomaly=False, failure=False),
)  # fmt: skip


def _hirl_lines(tk: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    return as_list(tk.get("sent")), as_list(tk.get("received"))


HTTP_INVALID_REQUEST_LINE: Final[tuple[OtherRule, ...]] = (
    OtherRule("http_invalid_request_line.no-result", "Nothing sent and nothing received.",
              lambda m, tk: _hirl_lines(tk) == ([], []), anomaly=False, failure=True),
    OtherRule("http_invalid_request_line.tampering", "A line came back other than sent (OONI ignores the probe's tampering flag).",
              lambda m, tk: any(s != r for s, r in zip(*_hirl_lines(tk), strict=False)), anomaly=True, failure=False),
    OtherRule("http_invalid_request_line.ok", "Every line that came back is the line sent.", always, anomaly=False, failure=False),
)  # fmt: skip

# -- the other tests OONI scores -----------------------------------------------------------------

TCP_CONNECT: Final[tuple[OtherRule, ...]] = (
    OtherRule("tcp_connect.ok", "The connection succeeded.", lambda m, tk: tk.get("connection") == "success",
              anomaly=False, failure=False),
    OtherRule("tcp_connect.failed", "The connection failed (timeout, refused, reset...).", always, anomaly=True, failure=False),
)  # fmt: skip

DASH: Final[tuple[OtherRule, ...]] = (
    OtherRule("dash.no-result", "Empty test_keys.", lambda m, tk: not tk, anomaly=False, failure=True),
    OtherRule("dash.ok", "No failure.", lambda m, tk: tk.get("failure") is None, anomaly=False, failure=False),
    OtherRule("dash.failed", "A failure: OONI does not take a failed speed test for blocking.", always, anomaly=False, failure=True),
)  # fmt: skip


def _meek_score(tk: dict[str, Any]) -> float:
    score = 0.0
    for request in requests_of(tk):
        response = request.get("response", {})
        if not isinstance(response, dict) or response.get("code", 0) != 200:
            return 1.0  # no response, or a failed one
        headers: Any = response.get("headers", {})
        if isinstance(headers, list):
            headers = {h[0]: h[1][0] for h in headers if isinstance(h, list) and len(h) > 1 and h[1]}
        if not as_str(as_dict(headers).get("Server")).startswith("ECAcc "):
            score += 0.5
    return score


MEEK_FRONTED_REQUESTS_TEST: Final[tuple[OtherRule, ...]] = (
    OtherRule("meek_fronted_requests_test.no-requests", "No request was made (OONI: anomaly and failure).",
              lambda m, tk: not requests_of(tk), anomaly=True, failure=True),
    OtherRule("meek_fronted_requests_test.blocked", "A request failed or got no 200, or two came from another server than the CDN's.",
              lambda m, tk: _meek_score(tk) > 0.5, anomaly=True, failure=False),
    OtherRule("meek_fronted_requests_test.ok", "The fronted requests reached the CDN.", always, anomaly=False, failure=False),
)  # fmt: skip

OPENVPN: Final[tuple[OtherRule, ...]] = (
    OtherRule("openvpn.failed", "success is false: the tunnel failed.", lambda m, tk: tk.get("success") is False,
              anomaly=True, failure=False),
    OtherRule("openvpn.no-result", "No success key.", lambda m, tk: tk.get("success") is None, anomaly=False, failure=True),
    OtherRule("openvpn.ok", "The tunnel worked.", always, anomaly=False, failure=False),
)  # fmt: skip

BROWSER_WEB: Final[tuple[OtherRule, ...]] = (
    OtherRule("browser_web.ok", "result is \"ok\".", lambda m, tk: tk.get("result") == "ok", anomaly=False, failure=False),
    OtherRule("browser_web.error", "result is \"error\": the page did not load.", lambda m, tk: tk.get("result") == "error",
              anomaly=True, failure=False),
    OtherRule("browser_web.no-result", "Any other result.", always, anomaly=False, failure=True),
)  # fmt: skip

STUNREACHABILITY: Final[tuple[OtherRule, ...]] = (
    OtherRule("stunreachability.failed", "The STUN exchange failed (test_keys.failure).", lambda m, tk: bool(tk.get("failure")),
              anomaly=True, failure=False),
    OtherRule("stunreachability.ok", "The STUN server answered.", always, anomaly=False, failure=False),
)  # fmt: skip

HTTP_REQUESTS: Final[tuple[OtherRule, ...]] = (
    OtherRule("http_requests.no-result", "A control or experiment failure, or no body_length_match / headers_match.",
              lambda m, tk: bool(m.get("control_failure") or m.get("experiment_failure"))
              or tk.get("body_length_match") is None or tk.get("headers_match") is None, anomaly=False, failure=True),
    OtherRule("http_requests.differs", "The body length or the headers differ from those fetched over Tor.",
              lambda m, tk: not (bool(tk.get("body_length_match")) and bool(tk.get("headers_match"))),
              anomaly=True, failure=False),
    OtherRule("http_requests.ok", "The page matched the one fetched over Tor.", always, anomaly=False, failure=False),
)  # fmt: skip


def _unscored(test: str, what: str) -> tuple[OtherRule, ...]:
    """A test OONI does not score (its fastpath sets no flag): ok, whatever it found."""
    return (OtherRule(f"{test}.not-scored", f"{what}: OONI's fastpath does not score it (no flag).", always,
                      anomaly=False, failure=False),)  # fmt: skip


#: The rule table of each test OONI's fastpath scores, by test_name; any other is a failure (GENERIC).
TABLES: Final[dict[str, tuple[OtherRule, ...]]] = {
    "telegram": TELEGRAM,
    "whatsapp": WHATSAPP,
    "facebook_messenger": FACEBOOK_MESSENGER,
    "signal": SIGNAL,
    "tor": TOR,
    "vanilla_tor": VANILLA_TOR,
    "torsf": TORSF,
    "psiphon": PSIPHON,
    "http_header_field_manipulation": HTTP_HEADER_FIELD_MANIPULATION,
    "http_invalid_request_line": HTTP_INVALID_REQUEST_LINE,
    "tcp_connect": TCP_CONNECT,
    "dash": DASH,
    "meek_fronted_requests_test": MEEK_FRONTED_REQUESTS_TEST,
    "openvpn": OPENVPN,
    "browser_web": BROWSER_WEB,
    "stunreachability": STUNREACHABILITY,
    "http_requests": HTTP_REQUESTS,
    "ndt": _unscored("ndt", "A speed test"),
    "dns_consistency": _unscored("dns_consistency", "The legacy DNS consistency test"),
    "riseupvpn": _unscored("riseupvpn", "RiseupVPN (OONI stopped scoring it in October 2023)"),
}

GENERIC: Final[tuple[OtherRule, ...]] = (
    OtherRule("other.not-scored", "A test OONI's fastpath does not score (dnscheck, urlgetter...): a failure there, as here.",
              always, anomaly=False, failure=True),
)  # fmt: skip

NO_TEST_KEYS: Final = OtherRule(
    "other.no-test-keys",
    "test_keys is missing or not an object: no usable result.",
    always,
    anomaly=False,
    failure=True,
)


def rules_for(test_name: object) -> tuple[OtherRule, ...]:
    """The table that judges a measurement of ``test_name``."""
    table = TABLES.get(test_name) if isinstance(test_name, str) else None
    return GENERIC if table is None else table


def decide(measurement: dict[str, Any]) -> OtherRule:
    """The rule that decides the anomaly and failure flags of a measurement of a test other than
    web_connectivity (any test name; an unknown one gets the generic rule)."""
    keys = measurement.get("test_keys")
    if not isinstance(keys, dict):
        return NO_TEST_KEYS
    for rule in rules_for(measurement.get("test_name")):
        try:
            if rule.condition(measurement, keys):
                return rule
        except (TypeError, ValueError, KeyError, AttributeError, ZeroDivisionError, RecursionError):
            continue  # a shape no rule foresaw: the next rule decides (the last always holds)
    return GENERIC[-1]  # not reached: every table ends with a rule that always holds


def every_rule() -> list[OtherRule]:
    """Every rule once (the tables in order, then the generic ones), for docs and tests."""
    seen: dict[str, OtherRule] = {}
    for table in (*TABLES.values(), GENERIC, (NO_TEST_KEYS,)):
        for rule in table:
            seen.setdefault(rule.rule_id, rule)
    return list(seen.values())
