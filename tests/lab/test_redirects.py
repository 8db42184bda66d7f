"""Redirect chains in the lab: http -> https -> another host ending in a technique, relative
Location headers (now allowed in redirect_to), and loops (bounded, OONI's failure string)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.labtools import LabFactory
from reachwatch.lab.run import Timeouts, measure_all

pytestmark = pytest.mark.lab

SCENARIO = """
[[site]]
host = "ok.example"
https = true
[[site]]
host = "sni.example"
https = true
[[site]]
host = "c1.example"
redirect_to = "https://c2.example/"
[[site]]
host = "c2.example"
redirect_to = "https://sni.example/"
[[site]]
host = "rel.example"
redirect_to = "//ok.example/"
[[site]]
host = "loop-a.example"
redirect_to = "http://loop-b.example/"
[[site]]
host = "loop-b.example"
redirect_to = "https://loop-a.example/"
[[site]]
host = "self.example"
redirect_to = "/again"

[[isp]]
name = "Censor"
asn = 64501
cc = "PK"
block = [{ technique = "tls-sni-reset", host = "sni.example" }]
"""


@pytest.fixture(scope="module")
def rows(make_lab: LabFactory) -> Iterator[dict[tuple[str, str], dict[str, Any]]]:
    state = make_lab(SCENARIO, "rwrd", control=True)
    for run in measure_all(state, Timeouts(dns=1.0, tcp=2.0, tls=2.0, http=3.0)):
        assert run.returncode == 0, run.stderr
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for line in (Path(state.out) / "measurements.jsonl").read_text().splitlines():
        m = json.loads(line)
        out[(m["probe_asn"], m["input"])] = m["test_keys"]
    yield out


def test_chain_ending_in_a_technique(rows: Any) -> None:
    censored, control = rows[("AS64501", "http://c1.example/")], rows[("AS64496", "http://c1.example/")]
    assert [r["request"]["url"] for r in control["requests"]] == [
        "https://sni.example/",
        "https://c2.example/",
        "http://c1.example/",
    ]
    assert (control["blocking"], control["accessible"]) == (False, True)
    assert (censored["blocking"], censored["x_technique"], censored["x_rule"]) == (
        "http-failure",
        "tls-reset",
        "tls.reset@redirect",
    )


def test_relative_location_is_followed(rows: Any) -> None:
    keys = rows[("AS64501", "http://rel.example/")]
    assert [r["request"]["url"] for r in keys["requests"]] == ["http://ok.example/", "http://rel.example/"]
    assert (keys["blocking"], keys["accessible"]) == (False, True)


@pytest.mark.parametrize("url", ["http://loop-a.example/", "http://self.example/"])
def test_loops_stop_after_ten_redirects(rows: Any, url: str) -> None:
    for asn in ("AS64501", "AS64496"):
        keys = rows[(asn, url)]
        assert len(keys["requests"]) == 11
        assert keys["http_experiment_failure"] == keys["requests"][0]["failure"] == "http_too_many_redirects"
        assert (keys["blocking"], keys["accessible"], keys["x_rule"]) == (
            False,
            False,
            "site.down.http@redirect",
        )
