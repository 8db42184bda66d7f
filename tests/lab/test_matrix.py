"""The whole matrix, end to end: real probe, real control helper, real packet filtering.

Every technique over http and https where it applies, a redirect chain ending in each, every
non-censorship site condition, and an ISP that blocks nothing. Each row's exact ``blocking``,
``accessible`` and ``x_technique`` is asserted, from the censoring ISP, the clean ISP and the
control vantage.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.labtools import LabFactory
from reachwatch.lab.run import Timeouts, measure_all

pytestmark = pytest.mark.lab

# technique -> (schemes it applies to, expected blocking, expected x_technique)
TECHNIQUES: dict[str, tuple[tuple[str, ...], str, str]] = {
    "dns-hijack": (("http", "https"), "dns", "dns-hijack"),
    "dns-nxdomain": (("http", "https"), "dns", "dns-nxdomain"),
    "dns-timeout": (("http", "https"), "dns", "dns-timeout"),
    "dns-bogon": (("http", "https"), "dns", "dns-bogon"),
    "tcp-timeout": (("http", "https"), "tcp_ip", "tcp-timeout"),
    "tcp-reset": (("http", "https"), "tcp_ip", "tcp-reset"),
    "tls-sni-reset": (("https",), "http-failure", "tls-reset"),
    "tls-sni-timeout": (("https",), "http-failure", "tls-timeout"),
    "http-blockpage": (("http",), "http-diff", "http-blockpage"),
    "http-reset": (("http",), "http-failure", "http-reset"),
    "throttle": (("http", "https"), "http-failure", "throttled"),
}

# site condition (TOML) -> (scheme, expected accessible); never censorship
CONDITIONS: dict[str, tuple[str, str, bool]] = {
    "ok-http": ("", "http", True),
    "ok-https": ("", "https", True),
    "down": ("down = true", "http", False),
    "nxdomain": ("nxdomain = true", "https", False),
    "expired": ('cert = "expired"', "https", False),
    "wrong-host": ('cert = "wrong-host"', "https", False),
    "untrusted": ('cert = "untrusted"', "https", False),
    "unavailable": ("status = 503", "http", False),
    "moved": ('redirect_to = "https://ok-https.example/"', "http", True),
}


def _host(technique: str, scheme: str) -> str:
    return f"{technique}-{scheme}.example"


def scenario() -> str:
    sites, blocks = [], []
    for technique, (schemes, _, _) in TECHNIQUES.items():
        for scheme in schemes:
            host = _host(technique, scheme)
            sites.append(f'[[site]]\nhost = "{host}"\nhttps = {str(scheme == "https").lower()}\n')
            # a redirect chain ending in the technique: an open site that redirects to the blocked one
            sites.append(f'[[site]]\nhost = "r-{host}"\nredirect_to = "{scheme}://{host}/"\n')
            extra = ', rate = "4kbit"' if technique == "throttle" else ""
            blocks.append(f'{{ technique = "{technique}", host = "{host}"{extra} }}')
    for name, (condition, scheme, _) in CONDITIONS.items():
        sites.append(
            f'[[site]]\nhost = "{name}.example"\nhttps = {str(scheme == "https").lower()}\n{condition}\n'
        )
    rules = ",\n  ".join(blocks)
    censor = f'[[isp]]\nname = "Censor"\nasn = 64501\ncc = "PK"\nblock = [\n  {rules}\n]\n'
    clean = '[[isp]]\nname = "Clean"\nasn = 64502\ncc = "PK"\n'
    return "\n".join(sites) + "\n" + censor + "\n" + clean


@pytest.fixture(scope="module")
def results(make_lab: LabFactory) -> Iterator[dict[tuple[str, str], dict[str, Any]]]:
    state = make_lab(scenario(), "rwmx", control=True)
    runs = measure_all(state, Timeouts(dns=1.5, tcp=2.0, tls=2.0, http=3.0))
    for run in runs:
        assert run.returncode == 0, run.stderr
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for line in (Path(state.out) / "measurements.jsonl").read_text().splitlines():
        m = json.loads(line)
        rows[(m["probe_asn"], m["input"])] = m
    yield rows


def _verdict(rows: dict[tuple[str, str], dict[str, Any]], asn: str, url: str) -> tuple[Any, Any, Any]:
    m = rows.get((asn, url))
    assert m is not None, f"no measurement of {url} from {asn}"
    tk = m["test_keys"]
    return tk["blocking"], tk["accessible"], tk["x_technique"]


CENSORED = [
    pytest.param(technique, scheme, redirect, id=f"{technique}-{scheme}{'-redirect' if redirect else ''}")
    for technique, (schemes, _, _) in TECHNIQUES.items()
    for scheme in schemes
    for redirect in (False, True)
]


@pytest.mark.parametrize(("technique", "scheme", "redirect"), CENSORED)
def test_censoring_isp_names_the_technique(results: Any, technique: str, scheme: str, redirect: bool) -> None:
    _, blocking, name = TECHNIQUES[technique]
    host = _host(technique, scheme)
    url = f"http://r-{host}/" if redirect else f"{scheme}://{host}/"
    assert _verdict(results, "AS64501", url) == (blocking, False, name)


@pytest.mark.parametrize(("technique", "scheme", "redirect"), CENSORED)
def test_clean_isp_and_control_see_no_blocking(
    results: Any, technique: str, scheme: str, redirect: bool
) -> None:
    host = _host(technique, scheme)
    url = f"http://r-{host}/" if redirect else f"{scheme}://{host}/"
    for asn in ("AS64502", "AS64496"):
        assert _verdict(results, asn, url) == (False, True, "none"), asn


@pytest.mark.parametrize("condition", list(CONDITIONS))
def test_site_conditions_are_not_censorship(results: Any, condition: str) -> None:
    _, scheme, accessible = CONDITIONS[condition]
    url = f"{scheme}://{condition}.example/"
    for asn in ("AS64501", "AS64502", "AS64496"):
        assert _verdict(results, asn, url) == (False, accessible, "none"), asn


def test_every_measurement_is_ooni_shaped(results: Any) -> None:
    base = {"input", "measurement_start_time", "probe_asn", "probe_cc", "report_id", "test_name", "test_keys",
            "data_format_version", "software_name", "software_version", "test_version", "probe_ip"}  # fmt: skip
    keys = {"queries", "tcp_connect", "tls_handshakes", "requests", "control", "dns_consistency",
            "body_length_match", "body_proportion", "status_code_match", "headers_match", "title_match",
            "blocking", "accessible", "x_technique", "x_rule"}  # fmt: skip
    for m in results.values():
        assert base <= m.keys()
        assert keys <= m["test_keys"].keys()
        assert m["test_name"] == "web_connectivity"
        assert m["probe_ip"] == "127.0.0.1"
