"""Scenario validation: every mistake is a UserError naming file, entry and key (no root needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reachwatch.errors import UserError
from reachwatch.lab.addressing import layout
from reachwatch.lab.scenario import load_scenario

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
