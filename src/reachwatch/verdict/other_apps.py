"""The rules of OONI's instant-messaging tests: telegram, whatsapp, facebook_messenger, signal
(as OONI's fastpath scores them; :mod:`reachwatch.verdict.other_tests` holds every table)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from reachwatch.verdict.other_rule import (
    OtherRule,
    always,
    as_dict,
    as_str,
    requests_of,
    started,
    tcp_counts,
    url_of,
    version_of,
)

# -- telegram ----------------------------------------------------------------------------------
_TELEGRAM_WEB = ("https://web.telegram.org/", "http://web.telegram.org/")


def _telegram_score(tk: dict[str, Any]) -> float:
    """OONI's: the share of data-centre TCP connections that failed (0.5 with none), plus the share
    of data-centre HTTP requests that failed (0.5 with none), plus 1 if the web app is blocked."""
    reached, unreachable = tcp_counts(tk)
    score = unreachable / (reached + unreachable) if reached + unreachable else 0.5
    ok = failed = 0
    for request in requests_of(tk):
        if url_of(request) in _TELEGRAM_WEB:
            continue
        if request.get("failure") is None:
            ok += 1
        else:
            failed += 1
    score += failed / (ok + failed) if ok + failed else 0.5
    return score


def _telegram_malformed(m: dict[str, Any], tk: dict[str, Any]) -> bool:
    return any(url_of(r) is None for r in requests_of(tk))


TELEGRAM: Final[tuple[OtherRule, ...]] = (
    OtherRule("telegram.malformed", "A request without its URL: a probe bug, no usable result.",
              _telegram_malformed, anomaly=False, failure=True),
    OtherRule("telegram.web-blocked", "telegram_web_status is \"blocked\": web.telegram.org failed.",
              lambda m, tk: tk.get("telegram_web_status") == "blocked", anomaly=True, failure=False),
    OtherRule("telegram.endpoints-blocked", "Failed data-centre connections and requests score over 0.5 (OONI's sum; nothing measured counts 0.5 each).",
              lambda m, tk: _telegram_score(tk) > 0.5, anomaly=True, failure=False),
    OtherRule("telegram.ok", "The data centres were reached.", always, anomaly=False, failure=False),
)  # fmt: skip

# -- whatsapp ----------------------------------------------------------------------------------


def _unknown_failure(tk: dict[str, Any]) -> bool:
    """A ``*_failure`` key holding ``unknown_failure ...``: the probe could not tell what failed."""
    return any(k.endswith("_failure") and as_str(v).startswith("unknown_failure") for k, v in tk.items())


def _whatsapp_access(tk: dict[str, Any]) -> tuple[bool | None, bool | None]:
    """(web app reached, registration server reached); None for one not measured."""
    web = registration = None
    for request in requests_of(tk):
        url = url_of(request)
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
              lambda m, tk: "unknown_failure 'ascii' co" in as_str(tk.get("whatsapp_web_failure")), anomaly=False, failure=True),
    OtherRule("whatsapp.no-requests", "No HTTP request was made: no usable result.",
              lambda m, tk: not requests_of(tk), anomaly=False, failure=True),
    OtherRule("whatsapp.incomplete", "The web app or the registration server was not measured.",
              lambda m, tk: None in _whatsapp_access(tk), anomaly=False, failure=True),
    OtherRule("whatsapp.blocked-unknown-failure", "The web app or the registration server failed, and a *_failure is unknown_failure (OONI: anomaly and failure).",
              lambda m, tk: _whatsapp_blocked(tk) and _unknown_failure(tk), anomaly=True, failure=True),
    OtherRule("whatsapp.blocked", "The web app (web.whatsapp.com) or the registration server (v.whatsapp.net) failed.",
              lambda m, tk: _whatsapp_blocked(tk), anomaly=True, failure=False),
    OtherRule("whatsapp.no-endpoints", "No endpoint TCP connection was measured: no usable result.",
              lambda m, tk: tcp_counts(tk) == (0, 0), anomaly=False, failure=True),
    OtherRule("whatsapp.endpoints-blocked-unknown-failure", "No endpoint reached, and a *_failure is unknown_failure.",
              lambda m, tk: tcp_counts(tk)[0] == 0 and _unknown_failure(tk), anomaly=True, failure=True),
    OtherRule("whatsapp.endpoints-blocked", "No WhatsApp endpoint could be reached over TCP.",
              lambda m, tk: tcp_counts(tk)[0] == 0, anomaly=True, failure=False),
    OtherRule("whatsapp.unknown-failure", "Everything reached, but a *_failure is unknown_failure: OONI counts a failure.",
              lambda m, tk: _unknown_failure(tk), anomaly=False, failure=True),
    OtherRule("whatsapp.ok", "The web app, the registration server and an endpoint were reached.",
              always, anomaly=False, failure=False),
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
    OtherRule("facebook_messenger.ok", "At most one sign of blocking.", always, anomaly=False, failure=False),
)  # fmt: skip

# -- signal --------------------------------------------------------------------------------------


def _signal_unreliable(m: dict[str, Any], tk: dict[str, Any]) -> bool:
    """Versions of the test or the engine known to measure wrongly from some date (OONI's list), or
    versions it cannot read."""
    version = version_of(m.get("test_version", "0.0.0"))
    start = started(m)
    annotations = as_dict(m.get("annotations"))
    engine = version_of(annotations.get("engine_version", "0.0.0"))
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
    OtherRule("signal.ok", "signal_backend_status is \"ok\".", always, anomaly=False, failure=False),
)  # fmt: skip
