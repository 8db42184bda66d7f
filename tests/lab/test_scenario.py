"""Scenario validation: every mistake is a UserError naming file, entry and key (no root needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reachwatch.errors import UserError
from reachwatch.lab.addressing import layout
from reachwatch.lab.scenario import load_scenario
from reachwatch.lab.techniques import rate_bytes_per_second, throttle_burst
from reachwatch.lab.topology import (
    SKIPPED_NAMED,
    max_seen_rate,
    skipped_targets,
    throttled_page_sizes,
    unseen_throttles,
)
from reachwatch.probe.config import BODY_LIMIT, Timeouts

GOOD = """
[[site]]
host = "party.example"
https = true
[[isp]]
name = "Lab ISP A"
asn = 64501
cc = "PK"
block = [{ technique = "dns-hijack", host = "party.example" }]
"""


def _load(tmp_path: Path, text: str) -> str:
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(UserError) as info:
        load_scenario(path)
    return info.value.render()


def test_good_scenario_and_targets_list(tmp_path: Path) -> None:
    (tmp_path / "pk.csv").write_text(
        "url,category_code,category_description,date_added,source,notes\n"
        "https://news.example/,NEWS,News,2020-01-01,x,\nhttp://party.example/,POLR,P,2020-01-01,x,\n"
    )
    path = tmp_path / "s.toml"
    path.write_text('targets = "pk.csv"\n' + GOOD)
    scenario = load_scenario(path)
    assert [(s.host, s.url) for s in scenario.site] == [
        ("party.example", "https://party.example/"),  # the [[site]] wins over the list
        ("news.example", "https://news.example/"),
    ]
    assert scenario.control.asn == 64496 and scenario.isp[0].probes == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD.replace("https = true", "htps = true"), "site[0] (party.example): unknown key 'htps'"),
        (GOOD.replace('host = "party.example" }', 'host = "party.example", colour = 1 }'),
         "isp[0] (Lab ISP A).block[0] (party.example): unknown key 'colour'"),
        (GOOD.replace("dns-hijack", "dns-poison"), "unknown technique 'dns-poison'"),
        (GOOD.replace('host = "party.example" }', 'host = "other.example" }'),
         "isp[0] (Lab ISP A).block[0].host: host 'other.example' is not a site"),
        (GOOD.replace('technique = "dns-hijack"', 'technique = "throttle"'), "technique 'throttle' needs 'rate'"),
        (GOOD.replace('host = "party.example" }', 'host = "party.example", rate = "1mbit" }'),
         "technique 'dns-hijack' takes no 'rate'"),
        (GOOD.replace('cc = "PK"', 'cc = "pk"'), "isp[0] (Lab ISP A).cc"),
        (GOOD.replace("https = true", 'ip = "100.64.1.2"'), "reserved by the lab"),
        (GOOD.replace("https = true", 'cert = "stolen"'), "site[0] (party.example).cert"),
        (GOOD + "[control]\nasn = 1\nmood = 2\n", "control: unknown key 'mood'"),
        (GOOD + "[[site]]\nhost = 'party.example'\n", "site 'party.example' is listed twice"),
        ("[[isp]\n", "not valid TOML"),
        # regressions (adversarial check): each was accepted, or a traceback
        ('[[site]]\nhost = "party.example"\n', "s.toml: missing key 'isp'"),
        (GOOD.replace("https = true", 'redirect_to = "https://elsewhere.example/"'),
         "site[0] (party.example).redirect_to: 'https://elsewhere.example/' leads to 'elsewhere.example', which is not a site"),
        (GOOD.replace("https = true", 'redirect_to = "https://party.example:8443/"'), "names port 8443"),
        (GOOD.replace("https = true", 'redirect_to = "http://[::1/"'), "not a valid URL"),
        (GOOD.replace('host = "party.example" }', 'host = "party.example", to = "8.8.8.8" }'),
         "isp[0] (Lab ISP A).block[0].to: 8.8.8.8 is outside the lab's internet"),
        (GOOD.replace('host = "party.example" }', 'host = "party.example", to = "100.127.2.1" }'),
         "100.127.2.1 is one of the lab's own addresses"),
        (GOOD.replace('technique = "dns-hijack", host = "party.example" }',
                      'technique = "dns-bogon", host = "party.example", to = "203.0.113.9" }'),
         "203.0.113.9 is not a bogon"),
        (GOOD.replace('{ technique = "dns-hijack", host = "party.example" }',
                      '{ technique = "dns-hijack", host = "party.example" }, '
                      '{ technique = "dns-nxdomain", host = "Party.Example." }'),
         "block[1]: 'party.example' already has 'dns-hijack' (block[0]); one dns technique per host and ISP"),
        (GOOD.replace('technique = "dns-hijack"', 'technique = "throttle", rate = "0kbit"'),
         "less than 1 byte per second"),
        (GOOD.replace("https = true", 'ip = "203.0.113.254"'), "site[0] (party.example).ip: 203.0.113.254 is the lab's blockpage"),
        (GOOD.replace('host = "party.example"\n', 'host = "192.0.2.7"\n'), "is an IP address"),
    ],
)  # fmt: skip
def test_mistakes_are_named(tmp_path: Path, text: str, expected: str) -> None:
    message = _load(tmp_path, text)
    assert str(tmp_path / "s.toml") in message
    assert expected in message


def test_addressing() -> None:
    hosts: dict[str, str | None] = {f"s{i}.example": None for i in range(2000)}
    hosts["fixed.example"] = "203.0.113.1"
    lay = layout("rw", ["A", "B"], hosts)
    assert len(set(lay.sites.values())) == len(lay.sites)
    assert lay.sites["fixed.example"] == "203.0.113.1" and lay.sites["s0.example"] == "203.0.113.2"
    assert "203.0.113.254" not in lay.sites.values()  # the blockpage server's
    assert max(len(ns) for ns in lay.namespaces) <= 15
    assert [i.net for i in lay.isps] == ["100.64.1.0/24", "100.64.2.0/24"]
    assert lay.isps[0].probe_ip(0) == "100.64.1.10"
    with pytest.raises(UserError):
        layout("toolong", ["A"], {})


def test_unreadable_scenarios_are_errors(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(UserError, match="not UTF-8"):
        load_scenario(tmp_path / "s.toml")
    (tmp_path / "d.toml").mkdir()
    with pytest.raises(UserError, match="cannot read"):
        load_scenario(tmp_path / "d.toml")


def test_odd_targets_lists(tmp_path: Path) -> None:
    """IDN hosts become their xn-- form (one site for both spellings), a host listed with http
    and https gets https, upper case and final dots are folded, a [[site]] still wins."""
    (tmp_path / "l.csv").write_text(
        "\ufeffurl,category_code,category_description,date_added,source,notes,extra\r\n"
        'http://bücher.example/,NEWS,"a, b",2020,x,"multi\nline",z\r\n'
        "https://xn--bcher-kva.example:8443/p?q=1,NEWS,N,2020,x,,z\r\n"
        "http://Both.Example./,NEWS,N,2020,x,,z\r\n"
        "https://both.example/,NEWS,N,2020,x,,z\r\n"
        "https://party.example/,NEWS,N,2020,x,,z\r\n"
    )
    path = tmp_path / "s.toml"
    path.write_text('targets = "l.csv"\n' + GOOD.replace("https = true", 'redirect_to = "//both.example/x"'))
    sites = {s.host: s for s in load_scenario(path).site}
    assert sorted(sites) == ["both.example", "party.example", "xn--bcher-kva.example"]
    assert sites["xn--bcher-kva.example"].https and sites["both.example"].https
    assert not sites["party.example"].https  # the [[site]] wins
    assert sites["party.example"].redirect_to == "//both.example/x"  # relative: kept as written


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (
            "http://192.0.2.7/",
            "l.csv:3: 'http://192.0.2.7/': the lab cannot host a site at an IP-literal URL",
        ),
        ("http://[2001:db8::1]/", "l.csv:3: 'http://[2001:db8::1]/': the lab cannot host"),
        (
            "http://under_score.example/",
            "l.csv:3: 'http://under_score.example/': 'under_score.example' is not a host name",
        ),
    ],
)
def test_targets_the_lab_cannot_host_are_skipped_naming_file_and_line(
    tmp_path: Path, row: str, expected: str
) -> None:
    """A real list has such rows (https://1.1.1.1/ in the global list): they are skipped, and
    said, instead of stopping every other site from being measured."""
    (tmp_path / "l.csv").write_text(
        "url,category_code,category_description,date_added,source,notes\n"
        f"http://ok.example/,NEWS,N,2020,x,\n{row},NEWS,N,2020,x,\n"
    )
    path = tmp_path / "s.toml"
    path.write_text('targets = "l.csv"\n' + GOOD)
    scenario = load_scenario(path)
    assert "ok.example" in {s.host for s in scenario.site}
    assert len(scenario.skipped) == 1 and expected in scenario.skipped[0]
    warnings = skipped_targets(scenario.skipped)
    assert warnings[0] == "targets: 1 row(s) skipped, the lab cannot host them"
    assert expected in warnings[1]


def test_a_bad_url_in_the_targets_list_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_text(
        "url,category_code,category_description,date_added,source,notes\n"
        "http://ok.example/,NEWS,N,2020,x,\nhttp://[::1/,NEWS,N,2020,x,\n"
    )
    path = tmp_path / "s.toml"
    path.write_text('targets = "l.csv"\n' + GOOD)
    with pytest.raises(UserError) as info:
        load_scenario(path)
    assert "l.csv:3: 'http://[::1/' is not a valid URL" in info.value.render()


def test_many_skipped_rows_are_counted_not_all_named() -> None:
    warnings = skipped_targets([f"l.csv:{n}: why" for n in range(2, 40)])
    assert warnings[0].startswith("targets: 38 row(s) skipped")
    assert len(warnings) == 1 + SKIPPED_NAMED + 1 and warnings[-1] == f"  ... and {38 - SKIPPED_NAMED} more"


RATES = ["1bps", "1kbit", "8kbit", "16kbit", "64kbit", "256kbit", "381kbit", "1mbit", "10mbit"]


def test_a_throttled_page_outlasts_the_burst_and_the_probes_timeout(tmp_path: Path) -> None:
    """At 1kbit the page (30 s worth, so the 6 KB minimum) fitted in the policer's 6,000-byte
    burst and loaded in a second or two: a throttle nobody could see. Whatever part of the page
    a probe reads must still be arriving when its HTTP timeout ends, for every rate a warning
    does not name; at 1mbit a probe's 512 KiB read arrives in ~4 s, which the warning says."""
    blocks = ", ".join(
        f'{{ technique = "throttle", host = "s{i}.example", rate = "{r}" }}' for i, r in enumerate(RATES)
    )
    sites = "".join(f'[[site]]\nhost = "s{i}.example"\n' for i in range(len(RATES)))
    path = tmp_path / "s.toml"
    path.write_text(f'{sites}[[isp]]\nname = "T"\nasn = 64501\ncc = "PK"\nblock = [{blocks}]\n')
    scenario = load_scenario(path)
    sizes = throttled_page_sizes(scenario)
    warned = " ".join(unseen_throttles(scenario))
    timeout = Timeouts().http
    for i, rate in enumerate(RATES):
        bps = rate_bytes_per_second(rate)
        seen = throttle_burst(bps) + bps * timeout < min(sizes[f"s{i}.example"], BODY_LIMIT)
        assert seen == (f"s{i}.example " not in warned), rate
        assert seen == (bps * 8 <= int(max_seen_rate().removesuffix("kbit")) * 1000), rate
    assert "T: throttle s7.example at 1mbit" in warned and "at most 381kbit shows" in warned
