"""Every lab technique, over http and https, at the first hop and after a redirect."""

from __future__ import annotations

from typing import Any

import pytest
from verdict_builders import BLOCKPAGE, OTHER_IP, measurement, redirected, single

from reachwatch.verdict import REDIRECT_SUFFIX, decide

HIJACK = {"addrs": (OTHER_IP,)}
CTRL_OK: dict[str, Any] = {}

# (name, schemes, probe options, control options, blocking, accessible, technique)
CENSORSHIP: list[tuple[str, tuple[str, ...], dict[str, Any], dict[str, Any], Any, Any, str]] = [
    ("hijack-blockpage", ("http",), {**HIJACK, "body": BLOCKPAGE, "headers": {"Server": "dpi"}}, CTRL_OK, "dns", False, "dns-hijack"),
    ("hijack-tls", ("https",), {**HIJACK, "tls_failure": "ssl_invalid_hostname"}, CTRL_OK, "dns", False, "dns-hijack"),
    ("hijack-unreachable", ("http", "https"), {**HIJACK, "tcp_failure": "generic_timeout_error"}, CTRL_OK, "dns", False, "dns-hijack"),
    ("nxdomain", ("http", "https"), {"dns_failure": "dns_nxdomain_error"}, CTRL_OK, "dns", False, "dns-nxdomain"),
    ("dns-timeout", ("http", "https"), {"dns_failure": "generic_timeout_error"}, CTRL_OK, "dns", False, "dns-timeout"),
    ("bogon", ("http", "https"), {"addrs": ("10.10.34.35",), "tcp_failure": "generic_timeout_error"}, CTRL_OK, "dns", False, "dns-bogon"),
    ("localhost", ("http", "https"), {"addrs": ("127.0.0.1",), "tcp_failure": "connection_refused"}, CTRL_OK, "dns", False, "dns-bogon"),
    ("tcp-timeout", ("http", "https"), {"tcp_failure": "generic_timeout_error"}, CTRL_OK, "tcp_ip", False, "tcp-timeout"),
    ("tcp-refused", ("http", "https"), {"tcp_failure": "connection_refused"}, CTRL_OK, "tcp_ip", False, "tcp-reset"),
    ("tls-reset", ("https",), {"tls_failure": "connection_reset"}, CTRL_OK, "http-failure", False, "tls-reset"),
    ("tls-timeout", ("https",), {"tls_failure": "generic_timeout_error"}, CTRL_OK, "http-failure", False, "tls-timeout"),
    ("tls-throttled", ("https",), {"tls_failure": "generic_timeout_error", "tls_bytes": 900}, CTRL_OK, "http-failure", False, "throttled"),
    ("http-reset", ("http",), {"http_failure": "connection_reset", "code": None}, CTRL_OK, "http-failure", False, "http-reset"),
    ("http-eof", ("http",), {"http_failure": "eof_error", "code": None}, CTRL_OK, "http-failure", False, "http-reset"),
    ("http-drop", ("http",), {"http_failure": "generic_timeout_error", "code": None}, CTRL_OK, "http-failure", False, "http-reset"),
    ("http-throttled-headers", ("http", "https"), {"http_failure": "generic_timeout_error", "body": "x" * 10}, CTRL_OK, "http-failure", False, "throttled"),
    ("http-throttled-bytes", ("http", "https"), {"http_failure": "generic_timeout_error", "code": None, "http_bytes": 500}, CTRL_OK, "http-failure", False, "throttled"),
    ("blockpage-body-title", ("http",), {"body": BLOCKPAGE, "headers": {"Server": "dpi"}}, CTRL_OK, "http-diff", False, "http-blockpage"),
    ("blockpage-status", ("http",), {"body": BLOCKPAGE, "code": 403, "headers": {"Server": "dpi"}}, CTRL_OK, "http-diff", False, "http-blockpage"),
]  # fmt: skip

NOT_CENSORSHIP: list[tuple[str, tuple[str, ...], dict[str, Any], dict[str, Any], Any, Any, str]] = [
    ("works", ("http", "https"), {}, CTRL_OK, False, True, "none"),
    ("site-down", ("http", "https"), {"tcp_failure": "generic_timeout_error"}, {"tcp_failure": "generic_timeout_error", "http_failure": "generic_timeout_error"}, False, False, "none"),
    ("nxdomain-everywhere", ("http", "https"), {"dns_failure": "dns_nxdomain_error"}, {"dns_failure": "dns_name_error", "http_failure": "dns_lookup_error"}, False, False, "none"),
    ("expired-cert", ("https",), {"tls_failure": "ssl_invalid_certificate"}, {"tls_failure": "ssl_invalid_certificate", "http_failure": "ssl_invalid_certificate"}, False, False, "none"),
    ("wrong-host-cert", ("https",), {"tls_failure": "ssl_invalid_hostname"}, {"tls_failure": "ssl_invalid_hostname", "http_failure": "ssl_invalid_hostname"}, False, False, "none"),
    ("untrusted-cert", ("https",), {"tls_failure": "ssl_unknown_authority"}, {"tls_failure": "ssl_unknown_authority", "http_failure": "ssl_unknown_authority"}, False, False, "none"),
    ("503-both", ("http", "https"), {"code": 503}, {"status": 503}, False, False, "none"),
    ("loop-both", ("http", "https"), {"http_failure": "http_too_many_redirects", "code": 302}, {"http_failure": "http_too_many_redirects"}, False, False, "none"),
]  # fmt: skip


# A broken site (refusing or silent, bad certificate) that is also censored: "expected" needs the
# control to have failed the same step the same way. Kept out of CENSORSHIP / NOT_CENSORSHIP, which
# seed the equivalence corpus.
BROKEN_SITES: list[tuple[str, tuple[str, ...], dict[str, Any], dict[str, Any], Any, Any, str]] = [
    ("tls-reset-expired-cert", ("https",), {"tls_failure": "connection_reset"}, {"tls_failure": "ssl_invalid_certificate", "http_failure": "ssl_invalid_certificate"}, "http-failure", False, "tls-reset"),
    ("tls-timeout-wrong-host-cert", ("https",), {"tls_failure": "generic_timeout_error"}, {"tls_failure": "ssl_invalid_hostname", "http_failure": "ssl_invalid_hostname"}, "http-failure", False, "tls-timeout"),
    ("tcp-timeout-refusing-site", ("http", "https"), {"tcp_failure": "generic_timeout_error"}, {"tcp_failure": "connection_refused", "http_failure": "connection_refused"}, "tcp_ip", False, "tcp-timeout"),
    ("tcp-refused-silent-site", ("http", "https"), {"tcp_failure": "connection_refused"}, {"tcp_failure": "generic_timeout_error", "http_failure": "generic_timeout_error"}, "tcp_ip", False, "tcp-reset"),
    ("site-refuses", ("http", "https"), {"tcp_failure": "connection_refused"}, {"tcp_failure": "connection_refused", "http_failure": "connection_refused"}, False, False, "none"),
    ("dns-timeout-nonexistent-name", ("http", "https"), {"dns_failure": "generic_timeout_error"}, {"dns_failure": "dns_name_error", "http_failure": "dns_lookup_error"}, "dns", False, "dns-timeout"),
    ("dns-timeout-everywhere", ("http", "https"), {"dns_failure": "generic_timeout_error"}, {"dns_failure": "generic_timeout_error", "http_failure": "generic_timeout_error"}, False, False, "none"),
    # a name that does not exist, answered by the probe's resolver: a sink is dns-bogon (the lab's
    # dns-bogon of an nxdomain site was dns-hijack), an address the lab's sites stand on a hijack
    ("bogon-nonexistent-name", ("http", "https"), {"addrs": ("10.10.34.35",), "tcp_failure": "network_unreachable"}, {"dns_failure": "dns_name_error", "http_failure": "dns_lookup_error"}, "dns", False, "dns-bogon"),
    ("localhost-nonexistent-name", ("http", "https"), {"addrs": ("127.0.0.1",), "tcp_failure": "connection_refused"}, {"dns_failure": "dns_name_error", "http_failure": "dns_lookup_error"}, "dns", False, "dns-bogon"),
    ("hijack-nonexistent-name", ("http",), {**HIJACK, "body": BLOCKPAGE, "headers": {"Server": "dpi"}}, {"dns_failure": "dns_name_error", "http_failure": "dns_lookup_error"}, "dns", False, "dns-hijack"),
    ("tls-stalls-after-bytes-expired-cert", ("https",), {"tls_failure": "generic_timeout_error", "tls_bytes": 900}, {"tls_failure": "ssl_invalid_certificate", "http_failure": "ssl_invalid_certificate"}, False, False, "none"),
]  # fmt: skip


def _cases(rows: list[Any]) -> list[Any]:
    return [
        pytest.param(
            scheme, redirect, *row[2:], id=f"{row[0]}-{scheme}-{'redirect' if redirect else 'first'}"
        )
        for row in rows
        for scheme in row[1]
        for redirect in (False, True)
    ]


@pytest.mark.parametrize(
    ("scheme", "redirect", "probe", "ctrl", "blocking", "accessible", "technique"),
    _cases(CENSORSHIP + NOT_CENSORSHIP + BROKEN_SITES),
)
def test_technique(scheme: str, redirect: bool, probe: dict[str, Any], ctrl: dict[str, Any], blocking: Any, accessible: Any, technique: str) -> None:  # fmt: skip
    url = f"{scheme}://site.example/"
    m = (redirected if redirect else single)(url, probe, ctrl)
    v = decide(m)
    assert (v.blocking, v.accessible, v.x_technique) == (blocking, accessible, technique), v.x_rule
    assert v.x_rule.endswith(REDIRECT_SUFFIX) == redirect, v.x_rule


def test_lab_addresses_are_consistent_not_bogon() -> None:
    v = decide(single("http://site.example/", {}, {}))
    assert v.dns_consistency == "consistent"
    assert v.x_rule == "final.no-diff"


def test_redirect_to_another_site_is_accessible() -> None:
    v = decide(redirected("https://elsewhere.example/", {}, {}))
    assert (v.blocking, v.accessible, v.x_technique) == (False, True, "none")


@pytest.mark.parametrize(
    "probe", [{"http_failure": "connection_reset", "code": None}, {"tcp_failure": "generic_timeout_error"}]
)
def test_control_unavailable(probe: dict[str, Any]) -> None:
    url = "http://site.example/"
    from verdict_builders import hop

    m = measurement([hop(url, 0, **probe)], url, None, control_failure="connection_refused")
    v = decide(m)
    assert (v.blocking, v.accessible, v.x_technique, v.x_rule) == (None, None, None, "control.unavailable")


def test_control_unavailable_but_https_works() -> None:
    """OONI: a final response over verified TLS needs no control."""
    url = "https://site.example/"
    from verdict_builders import hop

    v = decide(measurement([hop(url, 0)], url, None, control_failure="connection_refused"))
    assert (v.blocking, v.accessible, v.x_rule) == (False, True, "final.tls-ok")


@pytest.mark.parametrize("status", ["abc", None, -1, 0, [200]])
def test_a_control_page_without_a_status_code_is_nothing_to_compare_with(status: Any) -> None:
    """A control that neither failed nor got a status code (a malformed or foreign helper's
    answer) must not make a page the probe fetched look like a blockpage."""
    m = single("http://site.example/", {}, {})
    m["test_keys"]["control"]["http_request"]["status_code"] = status
    v = decide(m)
    assert (v.blocking, v.accessible, v.x_technique, v.x_rule) == (None, None, None, "http.no-control")


@pytest.mark.parametrize(
    ("failure", "ctrl_failure", "rule"),
    [
        ("dns_temporary_failure", "dns_nxdomain_error", "dns.timeout"),
        ("generic_timeout_error", "dns_nxdomain_error", "dns.timeout"),
        ("dns_nxdomain_error", "dns_nxdomain_error", "site.down.dns"),
    ],
)
def test_top_level_failure_of_a_failed_lookup_is_the_resolvers(
    failure: str, ctrl_failure: str, rule: str
) -> None:
    """Our probe (as OONI's v0.5) writes the resolver's failure as ``http_experiment_failure``
    when no address was found. That is no HTTP failure: read as one (the legacy path of probes
    before v0.5), a lookup that timed out on a name the control found not to exist was
    ``site.down.http``; the lab's dns-timeout on an nxdomain site showed it at scale."""
    url = "http://site.example/"
    m = single(url, {"dns_failure": failure}, {"dns_failure": ctrl_failure, "http_failure": ctrl_failure})
    m["test_keys"]["dns_experiment_failure"] = m["test_keys"]["http_experiment_failure"] = failure
    v = decide(m)
    assert v.x_rule == rule
    assert v.blocking == ("dns" if rule == "dns.timeout" else False)
