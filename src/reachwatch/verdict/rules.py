"""The verdict rules, as data: the first rule whose condition holds decides.

Each rule names OONI's ``blocking``/``accessible`` outcome and our ``x_technique``. The order
follows OONI's classic analysis (webconnectivitylte ``analysisclassic.go``): a final response
over TLS, or one that matches the control, means accessible even when DNS looked odd; any other
outcome with inconsistent DNS is DNS blocking; then the deciding event (see ``walk``) is judged
against what the control saw for the same step. A rule whose event happened after a redirect
is reported as ``<rule_id>@redirect``. ``docs/verdict.md`` renders this table.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Final, Literal

from reachwatch.verdict.dns import DNS_TECHNIQUES, failure_technique
from reachwatch.verdict.facts import Facts
from reachwatch.verdict.walk import Expect, Kind

EVENT_KINDS: Final[tuple[Kind, ...]] = ("final", "http", "tls", "tcp", "dns", "dns-loopback")

TECHNIQUES: Final = frozenset(
    {
        "dns-hijack",
        "dns-nxdomain",
        "dns-timeout",
        "dns-bogon",
        "tcp-timeout",
        "tcp-reset",
        "tls-reset",
        "tls-timeout",
        "http-blockpage",
        "http-reset",
        "throttled",
        "none",
    }
)
RESET: Final = frozenset({"connection_reset", "eof_error", "connection_aborted", "broken_pipe"})
TIMEOUT: Final = frozenset({"generic_timeout_error"})
CERT: Final = frozenset({"ssl_invalid_hostname", "ssl_unknown_authority", "ssl_invalid_certificate"})
WEB_CONNECTIVITY: Final = "web_connectivity"

Condition = Callable[[Facts], bool]
OUTCOMES: Final[tuple[Expect, ...]] = ("missing", "ok", "failed")  # the control's (walk.Expect)
Blocking = Literal["dns", "tcp_ip", "http-failure", "http-diff", False] | None


@dataclass(frozen=True, slots=True)
class Rule:
    rule_id: str
    comment: str
    condition: Condition
    blocking: Blocking
    accessible: bool | None
    technique: str | None
    about: Literal["input", "event", "dns"] = "event"  # whose hop names the redirect suffix


def when(
    kind: Kind | tuple[Kind, ...],
    *,
    control: Collection[str] = ("missing", "ok", "failed"),
    page: Collection[str] = ("missing", "ok", "failed"),
    failures: Collection[str] | None = None,
    also: Condition | None = None,
) -> Condition:
    """A condition on the deciding event: its kind, the control's outcomes, the probe's failure."""
    kinds = (kind,) if isinstance(kind, str) else kind
    # None: any outcome (the default), not tested
    controls = None if set(control) >= set(OUTCOMES) else frozenset(control)
    pages = None if set(page) >= set(OUTCOMES) else frozenset(page)

    def condition(f: Facts) -> bool:  # NB: first_match skips it for events of other kinds
        e = f.event
        return (
            e is not None
            and e.kind in kinds
            and (controls is None or e.control in controls)
            and (pages is None or e.control_http in pages)
            and (failures is None or e.failure in failures)
            and (also is None or also(f))
        )

    _CAN_HOLD[condition] = lambda case: (
        case[0] in kinds and (controls is None or case[1] in controls) and (pages is None or case[2] in pages)
    )
    return condition


#: (event kind, control's outcome, control's page outcome, DNS technique); Nones without event
Case = tuple[Kind | None, str | None, str | None, str | None]
# Whether a condition can hold in a case (first_match skips it otherwise): when() conditions,
# the DNS rules. Only what the case alone decides; the other conditions can always hold.
_CAN_HOLD: Final[dict[Condition, Callable[[Case], bool]]] = {}


def _dns_failure(technique: str) -> Condition:
    """Either DNS was found inconsistent by this kind of failure, or the deciding event is one."""
    unexpected = when("dns", control=("ok",), also=lambda f: not (f.event and f.event.control_dns_empty))
    unverified = when("dns", control=("missing",), page=("ok", "failed"))
    unexplained = when("dns", control=("failed",), also=lambda f: _not_the_sites_fault(f))

    def condition(f: Facts) -> bool:
        if f.dns_technique == technique:
            return True
        e = f.event
        return (
            e is not None
            and e.failure is not None
            and failure_technique(e.failure) == technique
            and (unexpected(f) or unverified(f) or unexplained(f))
        )

    _CAN_HOLD[condition] = lambda case: case[3] == technique or case[0] == "dns"
    return condition


def _dns_inconsistent(technique: str) -> Condition:
    """DNS was found inconsistent, with this technique."""

    def condition(f: Facts) -> bool:
        return f.dns_technique == technique

    _CAN_HOLD[condition] = lambda case: case[3] == technique
    return condition


def _other(*groups: Collection[str]) -> Condition:
    taken = frozenset().union(*groups)
    return lambda f: f.event is not None and f.event.failure not in taken


def _not_the_sites_fault(f: Facts) -> bool:
    """The control failed this step too, but in a way that does not explain the probe's failure:
    the control's TLS got the server's certificate and found it invalid while the probe's handshake
    was reset or stalled before a byte arrived; or one connect timed out and the other was refused
    or reset (a server that answers with RST does not let SYNs go unanswered, nor the reverse); or the
    probe's resolver timed out where the control's said the name does not exist (an answer)."""
    e = f.event
    if e is None or e.failure is None or e.control_failure is None:
        return False
    if e.kind == "tls":
        cut = e.failure in RESET or (e.failure in TIMEOUT and not e.bytes_received)
        return cut and e.control_failure in CERT
    if e.kind == "tcp":
        return (e.failure in TIMEOUT) != (e.control_failure in TIMEOUT)
    if e.kind == "dns":
        timed_out = failure_technique(e.failure) == "dns-timeout"
        return timed_out and failure_technique(e.control_failure) != "dns-timeout"
    return False


_slow: Condition = lambda f: bool(f.event and ((f.event.bytes_received or 0) > 0))  # noqa: E731
_http_slow: Condition = lambda f: bool(f.event and (f.event.status_code or (f.event.bytes_received or 0) > 0))  # noqa: E731
_server_error: Condition = lambda f: bool(  # noqa: E731
    f.event and f.event.http and (f.event.status_code or 0) >= 500 and f.diff.status_code_match
)

RULES: Final[tuple[Rule, ...]] = (
    Rule("input.not-web-connectivity", "Not a web_connectivity measurement: nothing to judge.",
         lambda f: f.test_name != WEB_CONNECTIVITY, None, None, None, "input"),
    Rule("input.no-test-keys", "The measurement carries no test_keys (the probe failed early).",
         lambda f: not f.has_test_keys, None, None, None, "input"),
    Rule("site.error-both", "Ours: the probe and the control got the same 5xx: the site itself fails, for everyone.",
         when("final", page=("ok",), also=_server_error), False, False, "none"),
    Rule("final.tls-ok", "OONI 1.1: a final response over a verified TLS handshake is the real site.",
         when("final", also=lambda f: bool(f.event and f.event.tls_ok)), False, True, "none"),
    Rule("control.unavailable", "No control measurement: expected outcomes are unknown.",
         lambda f: not f.control_available, None, None, None, "input"),
    Rule("final.no-diff", "OONI 1.3: the final response matches the control's page (status and body/headers/title).",
         when("final", page=("ok", "failed"), also=lambda f: not f.diff.differs), False, True, "none"),
    Rule("dns.nxdomain", "The probe's resolver denied the name (NXDOMAIN, REFUSED, no answer...) while the control resolved it.",
         _dns_failure("dns-nxdomain"), "dns", False, "dns-nxdomain", "dns"),
    Rule("dns.timeout", "The probe's resolver timed out while the control resolved the name (or answered that it does not exist).",
         _dns_failure("dns-timeout"), "dns", False, "dns-timeout", "dns"),
    Rule("dns.bogon", "The probe got only bogon answers (private, loopback...) the control did not get.",
         _dns_inconsistent("dns-bogon"), "dns", False, "dns-bogon", "dns"),
    Rule("dns.hijack", "The probe's answers share no IP, no ASN and no verified TLS handshake with the control's.",
         _dns_inconsistent("dns-hijack"), "dns", False, "dns-hijack", "dns"),
    Rule("http.no-control", "OONI 1.2/2.1: the page fetch ended but the control has no HTTP result to compare with.",
         when(("final", "http"), page=("missing",)), None, None, None),
    Rule("http.control-failed", "Ours (OONI 1.4 says http-diff): a page for the probe, a failed fetch for the control: nothing to compare it with, and a site may refuse the control alone. A known blockpage decides (fingerprint.blockpage).",
         when("final", page=("failed",)), None, None, None),
    Rule("http.blockpage", "OONI 1.4: the final response differs from the control's page.",
         when("final"), "http-diff", False, "http-blockpage"),
    Rule("site.down.http", "OONI 2.2: the page fetch failed for the probe and for the control.",
         when("http", page=("failed",)), False, False, "none"),
    Rule("http.reset", "The HTTP exchange was reset or closed by the network, the control fetched the page.",
         when("http", page=("ok",), failures=RESET), "http-failure", False, "http-reset"),
    Rule("http.throttled", "HTTP timed out after data arrived (headers or bytes): a slowed-down link.",
         when("http", page=("ok",), failures=TIMEOUT, also=_http_slow), "http-failure", False, "throttled"),
    Rule("http.timeout", "HTTP timed out with nothing received: the request was dropped (nearest term: http-reset).",
         when("http", page=("ok",), failures=TIMEOUT), "http-failure", False, "http-reset"),
    Rule("http.other", "Another HTTP failure (bad redirect, invalid response...) the control did not see.",
         when("http", page=("ok",)), "http-failure", False, None),
    Rule("tls.no-control", "OONI 3.1.1: TLS failed; the control has neither this handshake nor the page.",
         when("tls", control=("missing",), page=("missing",)), None, None, None),
    Rule("site.down.tls", "OONI 3.2: the TLS handshake failed for the control too (bad certificate, no TLS...), not a reset or stall against a certificate.",
         when("tls", control=("failed",), also=lambda f: not _not_the_sites_fault(f)), False, False, "none"),
    Rule("tls.reset", "The TLS handshake was reset or closed by the network (SNI filtering).",
         when("tls", failures=RESET), "http-failure", False, "tls-reset"),
    Rule("tls.throttled", "TLS timed out after bytes arrived: a slowed-down link.",
         when("tls", failures=TIMEOUT, also=_slow), "http-failure", False, "throttled"),
    Rule("tls.timeout", "TLS timed out with nothing received: the handshake was dropped.",
         when("tls", failures=TIMEOUT), "http-failure", False, "tls-timeout"),
    Rule("tls.mitm", "An invalid certificate the control did not get: a middlebox answered (usually a blockpage).",
         when("tls", failures=CERT), "http-failure", False, "http-blockpage"),
    Rule("tls.other", "Another TLS failure the control did not see.",
         when("tls", also=_other(RESET, TIMEOUT, CERT)), "http-failure", False, None),
    Rule("tcp.no-control", "OONI 4.1.1: TCP failed; the control has neither this endpoint nor the page.",
         when("tcp", control=("missing",), page=("missing",)), None, None, None),
    Rule("site.down.tcp", "OONI 4.2: the control could not connect to this endpoint either, failing the same way (timeout / refused).",
         when("tcp", control=("failed",), also=lambda f: not _not_the_sites_fault(f)), False, False, "none"),
    Rule("tcp.timeout", "OONI 4.3: the connect timed out (SYN dropped) while the control connected (or was refused).",
         when("tcp", control=("ok", "failed"), failures=TIMEOUT), "tcp_ip", False, "tcp-timeout"),
    Rule("tcp.reset", "OONI 4.3: the connect was refused or reset while the control connected (or timed out).",
         when("tcp", control=("ok", "failed")), "tcp_ip", False, "tcp-reset"),
    Rule("tcp.timeout.page-only", "OONI 4.1.2: connect timed out; only the control's page fetch is known (after a redirect).",
         when("tcp", control=("missing",), failures=TIMEOUT), "http-failure", False, "tcp-timeout"),
    Rule("tcp.reset.page-only", "OONI 4.1.2: connect refused; only the control's page fetch is known (after a redirect).",
         when("tcp", control=("missing",)), "http-failure", False, "tcp-reset"),
    Rule("dns.no-control", "OONI 5.1.1 (where OONI says accessible): DNS failed and the control has no DNS result.",
         when("dns", control=("missing",), page=("missing",)), None, None, None),
    Rule("site.down.dns", "OONI 5.2: the control's resolver failed too (NXDOMAIN everywhere), not where the probe's timed out.",
         when("dns", control=("failed",), also=lambda f: not _not_the_sites_fault(f)), False, False, "none"),
    Rule("site.down.dns-no-answer", "OONI 5.3: the control resolved the name to no address at all.",
         when("dns", control=("ok",)), False, False, "none"),
    Rule("site.down.loopback", "OONI 7: the name resolves to loopback addresses for the control too.",
         when("dns-loopback", also=lambda f: bool(f.event and f.event.control_loopback)), False, False, "none"),
    Rule("undecided", "Nothing observed says what happened (OONI leaves blocking and accessible null).",
         lambda f: True, None, None, None),
)  # fmt: skip


#: The rules that leave a web_connectivity measurement undetermined (blocking and accessible
#: null) for want of a usable control: no control, no HTTP part in it, its fetch failed, nothing
#: observed. Not the ``input.*`` rules, which judge nothing.
UNDETERMINED: Final = frozenset(
    rule.rule_id
    for rule in RULES
    if rule.blocking is None and rule.accessible is None and not rule.rule_id.startswith("input.")
)
#: Where the rules leave a measurement undetermined (:data:`UNDETERMINED`), a known censor's
#: fingerprint that confirms blocking decides instead, by where it was found (a DNS answer, a
#: response's header or body). Applied by ``reachwatch analyze``, which matches the fingerprints;
#: without them (the collector) a measurement keeps the rules' outcome.
FINGERPRINT_RULES: Final[dict[str, Rule]] = {
    "dns": Rule("fingerprint.dns", "Undetermined by the rules, but a DNS answer is a known censor's (a blockpage server, a sinkhole).",
                lambda f: True, "dns", False, "dns-hijack"),
    "header": Rule("fingerprint.blockpage", "Undetermined by the rules, but the probe's page is a known blockpage (a header or body fingerprint).",
                   lambda f: True, "http-diff", False, "http-blockpage"),
}  # fmt: skip
FINGERPRINT_RULES["body"] = FINGERPRINT_RULES["header"]


def _candidates(case: Case) -> tuple[Rule, ...]:
    """The rules, in order, minus those that cannot hold in this case (see ``_CAN_HOLD``).
    Only a shortcut: the conditions are still evaluated, in order."""
    return tuple(rule for rule in RULES if rule.condition not in _CAN_HOLD or _CAN_HOLD[rule.condition](case))


_BY_CASE: Final[dict[Case, tuple[Rule, ...]]] = {
    case: _candidates(case)
    for technique in (None, *DNS_TECHNIQUES)
    for case in [
        (None, None, None, technique),
        *(
            (kind, control, page, technique)
            for kind in EVENT_KINDS
            for control in OUTCOMES
            for page in OUTCOMES
        ),
    ]
}


def first_match(facts: Facts) -> Rule:
    """The first rule whose condition holds (``undecided`` always does)."""
    e = facts.event
    if e is None:
        case: Case = (None, None, None, facts.dns_technique)
    else:
        case = (e.kind, e.control, e.control_http, facts.dns_technique)
    for rule in _BY_CASE.get(case, RULES):
        if rule.condition(facts):
            return rule
    return RULES[-1]
