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

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

#: on (the measurement, its test_keys: an object)
Condition = Callable[[dict[str, Any], dict[str, Any]], bool]


@dataclass(frozen=True, slots=True)
class OtherRule:
    rule_id: str
    comment: str
    condition: Condition
    anomaly: bool  # OONI counts the measurement as an anomaly (blocking_general > 0.5)
    failure: bool  # OONI counts it as a failure (accuracy < 0.5): no usable result


def _always(m: dict[str, Any], tk: dict[str, Any]) -> bool:
    return True


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _tcp_counts(tk: dict[str, Any]) -> tuple[int, int]:
    """(reached, unreachable) of ``tcp_connect``, by each entry's ``status.success``."""
    reached = unreachable = 0
    for entry in _list(tk.get("tcp_connect")):
        success = _dict(_dict(entry).get("status")).get("success")
        if success is True:
            reached += 1
        elif success is False:
            unreachable += 1
    return reached, unreachable


def _requests(tk: dict[str, Any]) -> list[dict[str, Any]]:
    return [_dict(r) for r in _list(tk.get("requests"))]


def _url(request: dict[str, Any]) -> str | None:
    url = _dict(request.get("request")).get("url")
    return url if isinstance(url, str) else None


def _version(text: object) -> tuple[int, ...] | None:
    """``3.17.2`` as (3, 17, 2); None if not a plain dotted version."""
    if not isinstance(text, str) or not re.fullmatch(r"[0-9]+(\.[0-9]+)*", text):
        return None
    return tuple(int(part) for part in text.split("."))


def _started(m: dict[str, Any]) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(_str(m.get("measurement_start_time")), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None


# -- telegram ----------------------------------------------------------------------------------
_TELEGRAM_WEB = ("https://web.telegram.org/", "http://web.telegram.org/")


def _telegram_score(tk: dict[str, Any]) -> float:
    """OONI's: the share of data-centre TCP connections that failed (0.5 with none), plus the share
    of data-centre HTTP requests that failed (0.5 with none), plus 1 if the web app is blocked."""
    reached, unreachable = _tcp_counts(tk)
    score = unreachable / (reached + unreachable) if reached + unreachable else 0.5
    ok = failed = 0
    for request in _requests(tk):
        if _url(request) in _TELEGRAM_WEB:
            continue
        if request.get("failure") is None:
            ok += 1
        else:
            failed += 1
    score += failed / (ok + failed) if ok + failed else 0.5
    return score


def _telegram_malformed(m: dict[str, Any], tk: dict[str, Any]) -> bool:
    return any(_url(r) is None for r in _requests(tk))


TELEGRAM: Final[tuple[OtherRule, ...]] = (
    OtherRule("telegram.malformed", "A request without its URL: a probe bug, no usable result.",
              _telegram_malformed, anomaly=False, failure=True),
    OtherRule("telegram.web-blocked", "telegram_web_status is \"blocked\": web.telegram.org failed.",
              lambda m, tk: tk.get("telegram_web_status") == "blocked", anomaly=True, failure=False),
    OtherRule("telegram.endpoints-blocked", "Failed data-centre connections and requests score over 0.5 (OONI's sum; nothing measured counts 0.5 each).",
              lambda m, tk: _telegram_score(tk) > 0.5, anomaly=True, failure=False),
    OtherRule("telegram.ok", "The data centres were reached.", _always, anomaly=False, failure=False),
)  # fmt: skip

# -- whatsapp ----------------------------------------------------------------------------------


def _unknown_failure(tk: dict[str, Any]) -> bool:
    """A ``*_failure`` key holding ``unknown_failure ...``: the probe could not tell what failed."""
    return any(k.endswith("_failure") and _str(v).startswith("unknown_failure") for k, v in tk.items())


def _whatsapp_access(tk: dict[str, Any]) -> tuple[bool | None, bool | None]:
    """(web app reached, registration server reached); None for one not measured."""
    web = registration = None
    for request in _requests(tk):
        url = _url(request)
        if url == "https://web.whatsapp.com/":
            web = request.get("failure", True) in (None, "", False)
        elif url == "https://v.whatsapp.net/v2/register":
            registration = request.get("failure") is None
    return web, registration


def _whatsapp_blocked(tk: dict[str, Any]) -> bool:
    web, registration = _whatsapp_access(tk)
    return web is not True or registration is not True


WHATSAPP: Final[tuple[OtherRule, ...]] = (
    OtherRule("whatsapp.probe-bug", "whatsapp_web_failure is the probe's own ascii codec bug: no usable result.",
              lambda m, tk: "unknown_failure 'ascii' co" in _str(tk.get("whatsapp_web_failure")), anomaly=False, failure=True),
    OtherRule("whatsapp.no-requests", "No HTTP request was made: no usable result.",
              lambda m, tk: not _requests(tk), anomaly=False, failure=True),
    OtherRule("whatsapp.incomplete", "The web app or the registration server was not measured.",
              lambda m, tk: None in _whatsapp_access(tk), anomaly=False, failure=True),
    OtherRule("whatsapp.blocked-unknown-failure", "The web app or the registration server failed, and a *_failure is unknown_failure (OONI: anomaly and failure).",
              lambda m, tk: _whatsapp_blocked(tk) and _unknown_failure(tk), anomaly=True, failure=True),
    OtherRule("whatsapp.blocked", "The web app (web.whatsapp.com) or the registration server (v.whatsapp.net) failed.",
              lambda m, tk: _whatsapp_blocked(tk), anomaly=True, failure=False),
    OtherRule("whatsapp.no-endpoints", "No endpoint TCP connection was measured: no usable result.",
              lambda m, tk: _tcp_counts(tk) == (0, 0), anomaly=False, failure=True),
    OtherRule("whatsapp.endpoints-blocked-unknown-failure", "No endpoint reached, and a *_failure is unknown_failure.",
              lambda m, tk: _tcp_counts(tk)[0] == 0 and _unknown_failure(tk), anomaly=True, failure=True),
    OtherRule("whatsapp.endpoints-blocked", "No WhatsApp endpoint could be reached over TCP.",
              lambda m, tk: _tcp_counts(tk)[0] == 0, anomaly=True, failure=False),
    OtherRule("whatsapp.unknown-failure", "Everything reached, but a *_failure is unknown_failure: OONI counts a failure.",
              lambda m, tk: _unknown_failure(tk), anomaly=False, failure=True),
    OtherRule("whatsapp.ok", "The web app, the registration server and an endpoint were reached.",
              _always, anomaly=False, failure=False),
)  # fmt: skip

# -- facebook_messenger ------------------------------------------------------------------------
_FB_ENDPOINT_CHECKS = tuple(
    f"facebook_{e}_{what}"
    for e in ("b_api", "b_graph", "edge", "external_cdn", "scontent_cdn", "star")
    for what in ("dns_consistent", "reachable")
)
_FB_CONSISTENCY = (*_FB_ENDPOINT_CHECKS, "facebook_stun_dns_consistent")
#: all true (facebook_dns_blocking included, which old probes set wrongly) with no TCP blocking: ok
_FB_ALL_TRUE = (
    *(
        f"facebook_{e}_{what}"
        for e in ("b_api", "b_graph", "edge", "star")
        for what in ("dns_consistent", "reachable")
    ),
    "facebook_dns_blocking",
    "facebook_stun_dns_consistent",
)


def _fb_signals(tk: dict[str, Any]) -> int:
    """How many endpoint checks say false, plus how many of the two blocking flags say true."""
    false = sum(1 for k in _FB_CONSISTENCY if tk.get(k) is False)
    return false + sum(1 for k in ("facebook_tcp_blocking", "facebook_dns_blocking") if tk.get(k) is True)


FACEBOOK_MESSENGER: Final[tuple[OtherRule, ...]] = (
    OtherRule("facebook_messenger.all-reachable", "Every endpoint consistent and reachable and no TCP blocking: ok, whatever facebook_dns_blocking says (OONI's workaround).",
              lambda m, tk: all(tk.get(k) is True for k in _FB_ALL_TRUE) and tk.get("facebook_tcp_blocking") is False,
              anomaly=False, failure=False),
    OtherRule("facebook_messenger.blocked", "Two or more signs: an endpoint's DNS inconsistent or unreachable, facebook_tcp_blocking or facebook_dns_blocking (0.5 each in OONI's score).",
              lambda m, tk: _fb_signals(tk) >= 2, anomaly=True, failure=False),
    OtherRule("facebook_messenger.ok", "At most one sign of blocking.", _always, anomaly=False, failure=False),
)  # fmt: skip

# -- signal --------------------------------------------------------------------------------------


def _signal_unreliable(m: dict[str, Any], tk: dict[str, Any]) -> bool:
    """Versions of the test or the engine known to measure wrongly from some date (OONI's list), or
    versions it cannot read."""
    version = _version(m.get("test_version", "0.0.0"))
    start = _started(m)
    annotations = _dict(m.get("annotations"))
    engine = _version(annotations.get("engine_version", "0.0.0"))
    if version is None or start is None or engine is None:
        return True
    return (
        version == (0, 2, 4)
        or (version <= (0, 2, 3) and start >= dt.datetime(2023, 11, 7))
        or (version < (0, 2, 2) and start >= dt.datetime(2022, 10, 19))
        or (engine < (3, 17, 2) and start >= dt.datetime(2023, 5, 2))
    )


def _signal_failed(tk: dict[str, Any]) -> bool:
    """OONI's accuracy 0: failed_operation or failure set, or missing."""
    return bool(tk.get("failed_operation", True)) or bool(tk.get("failure", True))


SIGNAL: Final[tuple[OtherRule, ...]] = (
    OtherRule("signal.unreliable-version", "A test or engine version known to measure Signal wrongly at that date: no usable result.",
              _signal_unreliable, anomaly=False, failure=True),
    OtherRule("signal.blocked-failed", "signal_backend_status is \"blocked\", and the measurement records a failure (OONI: anomaly and failure).",
              lambda m, tk: tk.get("signal_backend_status") == "blocked" and _signal_failed(tk), anomaly=True, failure=True),
    OtherRule("signal.blocked", "signal_backend_status is \"blocked\": a Signal server failed.",
              lambda m, tk: tk.get("signal_backend_status") == "blocked", anomaly=True, failure=False),
    OtherRule("signal.failed", "signal_backend_status is not \"ok\", or a failure is recorded (or failure/failed_operation missing).",
              lambda m, tk: tk.get("signal_backend_status") != "ok" or _signal_failed(tk), anomaly=False, failure=True),
    OtherRule("signal.ok", "signal_backend_status is \"ok\".", _always, anomaly=False, failure=False),
)  # fmt: skip

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
    OtherRule("tor.ok", "Half or more of the targets that ran were reached.", _always, anomaly=False, failure=False),
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
              _always, anomaly=True, failure=False),
)  # fmt: skip

TORSF: Final[tuple[OtherRule, ...]] = (
    OtherRule("torsf.unreliable-version", "ooniprobe-android 3.8.3, whose torsf measured wrongly: no usable result.",
              lambda m, tk: m.get("software_version") == "3.8.3" and _str(m.get("software_name")).startswith("ooniprobe-android"),
              anomaly=False, failure=True),
    OtherRule("torsf.bootstrap-failed", "Tor over Snowflake failed (test_keys.failure).",
              lambda m, tk: bool(tk.get("failure")), anomaly=True, failure=False),
    OtherRule("torsf.ok", "Tor over Snowflake bootstrapped.", _always, anomaly=False, failure=False),
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
    OtherRule("psiphon.ok", "Psiphon bootstrapped and fetched through its tunnel.", _always, anomaly=False, failure=False),
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
    body = _dict(_dict(_hhfm_first(tk)).get("response")).get("body")
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
    sent_headers = _dict(_dict(_dict(_hhfm_first(tk)).get("request")).get("headers"))
    sent = {(str(k), str(v)) for k, v in sent_headers.items()}
    echoed.discard(("Connection", "close"))  # not always handled correctly
    sent.discard(("Connection", "close"))
    return echoed != sent


HTTP_HEADER_FIELD_MANIPULATION: Final[tuple[OtherRule, ...]] = (
    OtherRule("http_header_field_manipulation.no-response", "No request, or no response to it: no usable result.",
              _hhfm_no_response, anomaly=False, failure=True),
    OtherRule("http_header_field_manipulation.tampering", "The headers the helper received differ from those sent (or its answer is empty or unreadable).",
              _hhfm_changed, anomaly=True, failure=False),
    OtherRule("http_header_field_manipulation.ok", "The helper received the headers as sent.", _always, anomaly=False, failure=False),
)  # fmt: skip


def _hirl_lines(tk: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    return _list(tk.get("sent")), _list(tk.get("received"))


HTTP_INVALID_REQUEST_LINE: Final[tuple[OtherRule, ...]] = (
    OtherRule("http_invalid_request_line.no-result", "Nothing sent and nothing received.",
              lambda m, tk: _hirl_lines(tk) == ([], []), anomaly=False, failure=True),
    OtherRule("http_invalid_request_line.tampering", "A line came back other than sent (OONI ignores the probe's tampering flag).",
              lambda m, tk: any(s != r for s, r in zip(*_hirl_lines(tk), strict=False)), anomaly=True, failure=False),
    OtherRule("http_invalid_request_line.ok", "Every line that came back is the line sent.", _always, anomaly=False, failure=False),
)  # fmt: skip

# -- the other tests OONI scores -----------------------------------------------------------------

TCP_CONNECT: Final[tuple[OtherRule, ...]] = (
    OtherRule("tcp_connect.ok", "The connection succeeded.", lambda m, tk: tk.get("connection") == "success",
              anomaly=False, failure=False),
    OtherRule("tcp_connect.failed", "The connection failed (timeout, refused, reset...).", _always, anomaly=True, failure=False),
)  # fmt: skip

DASH: Final[tuple[OtherRule, ...]] = (
    OtherRule("dash.no-result", "Empty test_keys.", lambda m, tk: not tk, anomaly=False, failure=True),
    OtherRule("dash.ok", "No failure.", lambda m, tk: tk.get("failure") is None, anomaly=False, failure=False),
    OtherRule("dash.failed", "A failure: OONI does not take a failed speed test for blocking.", _always, anomaly=False, failure=True),
)  # fmt: skip


def _meek_score(tk: dict[str, Any]) -> float:
    score = 0.0
    for request in _requests(tk):
        response = request.get("response", {})
        if not isinstance(response, dict) or response.get("code", 0) != 200:
            return 1.0  # no response, or a failed one
        headers: Any = response.get("headers", {})
        if isinstance(headers, list):
            headers = {h[0]: h[1][0] for h in headers if isinstance(h, list) and len(h) > 1 and h[1]}
        if not _str(_dict(headers).get("Server")).startswith("ECAcc "):
            score += 0.5
    return score


MEEK_FRONTED_REQUESTS_TEST: Final[tuple[OtherRule, ...]] = (
    OtherRule("meek_fronted_requests_test.no-requests", "No request was made (OONI: anomaly and failure).",
              lambda m, tk: not _requests(tk), anomaly=True, failure=True),
    OtherRule("meek_fronted_requests_test.blocked", "A request failed or got no 200, or two came from another server than the CDN's.",
              lambda m, tk: _meek_score(tk) > 0.5, anomaly=True, failure=False),
    OtherRule("meek_fronted_requests_test.ok", "The fronted requests reached the CDN.", _always, anomaly=False, failure=False),
)  # fmt: skip

OPENVPN: Final[tuple[OtherRule, ...]] = (
    OtherRule("openvpn.failed", "success is false: the tunnel failed.", lambda m, tk: tk.get("success") is False,
              anomaly=True, failure=False),
    OtherRule("openvpn.no-result", "No success key.", lambda m, tk: tk.get("success") is None, anomaly=False, failure=True),
    OtherRule("openvpn.ok", "The tunnel worked.", _always, anomaly=False, failure=False),
)  # fmt: skip

BROWSER_WEB: Final[tuple[OtherRule, ...]] = (
    OtherRule("browser_web.ok", "result is \"ok\".", lambda m, tk: tk.get("result") == "ok", anomaly=False, failure=False),
    OtherRule("browser_web.error", "result is \"error\": the page did not load.", lambda m, tk: tk.get("result") == "error",
              anomaly=True, failure=False),
    OtherRule("browser_web.no-result", "Any other result.", _always, anomaly=False, failure=True),
)  # fmt: skip

STUNREACHABILITY: Final[tuple[OtherRule, ...]] = (
    OtherRule("stunreachability.failed", "The STUN exchange failed (test_keys.failure).", lambda m, tk: bool(tk.get("failure")),
              anomaly=True, failure=False),
    OtherRule("stunreachability.ok", "The STUN server answered.", _always, anomaly=False, failure=False),
)  # fmt: skip

HTTP_REQUESTS: Final[tuple[OtherRule, ...]] = (
    OtherRule("http_requests.no-result", "A control or experiment failure, or no body_length_match / headers_match.",
              lambda m, tk: bool(m.get("control_failure") or m.get("experiment_failure"))
              or tk.get("body_length_match") is None or tk.get("headers_match") is None, anomaly=False, failure=True),
    OtherRule("http_requests.differs", "The body length or the headers differ from those fetched over Tor.",
              lambda m, tk: not (bool(tk.get("body_length_match")) and bool(tk.get("headers_match"))),
              anomaly=True, failure=False),
    OtherRule("http_requests.ok", "The page matched the one fetched over Tor.", _always, anomaly=False, failure=False),
)  # fmt: skip


def _unscored(test: str, what: str) -> tuple[OtherRule, ...]:
    """A test OONI does not score (its fastpath sets no flag): ok, whatever it found."""
    return (OtherRule(f"{test}.not-scored", f"{what}: OONI's fastpath does not score it (no flag).", _always,
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
              _always, anomaly=False, failure=True),
)  # fmt: skip

NO_TEST_KEYS: Final = OtherRule(
    "other.no-test-keys",
    "test_keys is missing or not an object: no usable result.",
    _always,
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
