"""The one check of a URL that comes from outside (no network)."""

from __future__ import annotations

import pytest

from reachwatch.urls import ascii_host, host_problem, split_url


@pytest.mark.parametrize(
    "url",
    [
        "http://a.example/",
        "https://A.Example:8443/p?q=1#f",
        "http://bücher.example/",
        "http://xn--bcher-kva.example/",
        "http://192.0.2.7/",
        "http://[2001:db8::1]:8080/",
        "http://under_score.example/",
        "http://a.example./",
        "http://user@a.example/",
        "http://a.example/a b",  # a space in the path is encoded on the wire
    ],
)
def test_measurable_urls(url: str) -> None:
    parts, problem = split_url(url)
    assert problem is None and parts is not None


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1/",
        "http://a..b/",
        "http://a example/",
        "http://-.example/x\n",
        "http://" + "a" * 64 + ".example/",
        "http://" + "a." * 127 + "ex/",
        "http://1.2.3.999/",
        "http://a.example:0/",
        "http://a.example:x/",
        "ftp://a.example/",
        "http:///path",
        "a.example",
        "",
    ],
)
def test_unmeasurable_urls_are_named(url: str) -> None:
    parts, problem = split_url(url)
    assert parts is None and problem and repr(url) in problem


def test_idn_hosts_go_on_the_wire_as_punycode() -> None:
    assert ascii_host("bücher.example") == "xn--bcher-kva.example"
    assert ascii_host("A.example") == "A.example"
    assert host_problem("bücher.example") is None
