from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from reachwatch.fingerprints import Fingerprint, FingerprintMatcher, body_text, is_confirmed, load_dir
from reachwatch.fingerprints.match import dns_answers, normalise_dns, response_headers
from reachwatch.fingerprints.update import update

FPS = [
    Fingerprint("t.dns_ip", "dns", "full", "10.10.34.35", scope="nat", expected_countries=("IR",)),
    Fingerprint("t.dns_cname", "dns", "full", "Blockpage.Example.", scope="isp"),
    Fingerprint("t.loc", "header.location", "prefix", "http://block.example/", scope="isp"),
    Fingerprint("t.server", "header.server", "full", "Protected by WireFilter", scope="nat"),
    Fingerprint("t.body", "body", "contains", "<title>Access to this site is blocked</title>", scope="nat"),
    Fingerprint("t.word", "body", "contains", "zablokowan", scope="isp"),
    Fingerprint("t.rx", "body", "regexp", r"URL .* is prohibited", scope="prod"),
    Fingerprint("t.fp", "body", "contains", "Welcome to nginx!", scope="fp"),
]


def measurement(**test_keys: Any) -> dict[str, Any]:
    return {"probe_cc": "IR", "test_keys": test_keys}


def response(body: Any = "", headers: dict[str, str] | None = None, code: int = 200) -> dict[str, Any]:
    return {"response": {"code": code, "headers": headers or {}, "body": body}}


@pytest.fixture(scope="module")
def matcher() -> FingerprintMatcher:
    return FingerprintMatcher(FPS)


def names(matches: list[Any]) -> set[str]:
    return {m.name for m in matches}


def test_dns_answers_in_queries_and_duplicates(matcher: FingerprintMatcher) -> None:
    m = measurement(
        queries=[{"answers": [{"answer_type": "A", "ipv4": "93.184.216.34"}]}],
        x_dns_duplicate_responses=[{"answers": [{"answer_type": "A", "ipv4": "10.10.34.35"}]}],
    )
    [match] = matcher.match(m)
    assert match.name == "t.dns_ip" and match.where == "x_dns_duplicate_responses[0].answers"
    assert match.expected_country is True and match.confirms_blocking


def test_cname_is_case_and_dot_insensitive(matcher: FingerprintMatcher) -> None:
    m = measurement(queries=[{"answers": [{"answer_type": "CNAME", "hostname": "blockpage.example"}]}])
    assert names(matcher.match(m)) == {"t.dns_cname"}


def test_header_names_are_case_insensitive(matcher: FingerprintMatcher) -> None:
    m = measurement(
        requests=[
            response(headers={"LOCATION": "http://block.example/?u=x", "Server": "Protected by WireFilter"})
        ]
    )
    found = {m.name: m for m in matcher.match(m)}
    assert set(found) == {"t.loc", "t.server"}
    assert found["t.loc"].where == "requests[0].response.headers.location"
    assert found["t.loc"].expected_country is None  # no expected countries listed


def test_headers_list_is_preferred() -> None:
    resp = {"headers_list": [["Set-Cookie", "a"], ["Set-Cookie", "b"]], "headers": {"Set-Cookie": "b"}}
    assert list(response_headers(resp)) == [("Set-Cookie", "a"), ("Set-Cookie", "b")]


def test_bodies_str_and_base64(matcher: FingerprintMatcher) -> None:
    page = "<html><title>Access to this site is blocked</title> URL http://x is prohibited</html>"
    b64 = {"format": "base64", "data": base64.b64encode(page.encode() + b"\xff").decode()}
    for body in (page, b64):
        m = measurement(requests=[response(body=body), response(body="")])
        assert names(matcher.match(m)) == {"t.body", "t.rx"}
        assert is_confirmed(matcher.match(m))
    assert body_text({"body": {"format": "base64", "data": "!!!"}}) == ""


def test_anchorless_patterns_still_match(matcher: FingerprintMatcher) -> None:
    assert names(matcher.match(measurement(requests=[response(body="strona zablokowana")]))) == {"t.word"}


def test_false_positive_scope_does_not_confirm(matcher: FingerprintMatcher) -> None:
    matches = matcher.match(measurement(requests=[response(body="<h1>Welcome to nginx!</h1>")]))
    assert names(matches) == {"t.fp"} and not is_confirmed(matches)


def test_body_window() -> None:
    body = "x" * 70000 + " zablokowan "
    assert FingerprintMatcher(FPS).match_body(body) == []
    assert [f.name for f in FingerprintMatcher(FPS, body_window=None).match_body(body)] == ["t.word"]


def test_odd_shapes_do_not_crash(matcher: FingerprintMatcher) -> None:
    assert matcher.match({}) == []
    assert matcher.match({"test_keys": {"queries": None, "requests": [None, {"response": None}]}}) == []
    assert normalise_dns("2001:DB8:0:0::1") == "2001:db8::1"


def naive(fps: list[Fingerprint], m: dict[str, Any]) -> set[str]:
    """The obvious, slow oracle: every pattern tested one by one."""
    tk = m.get("test_keys") or {}
    out = set()
    for fp in fps:
        values: list[str] = []
        pattern = fp.pattern
        if fp.location == "dns":
            values = [normalise_dns(v) for _, v in dns_answers(tk)]
            pattern = normalise_dns(pattern)
        for r in tk.get("requests") or []:
            resp = r.get("response") or {}
            if fp.location == "body":
                values.append(body_text(resp))
            elif fp.header_name:
                values += [v for n, v in response_headers(resp) if n.lower() == fp.header_name]
        for v in values:
            t = fp.pattern_type
            if (
                (t == "full" and v == pattern)
                or (t == "prefix" and v.startswith(pattern))
                or (t == "contains" and pattern in v)
                or (t == "regexp" and re.search(pattern, v))
            ):
                out.add(fp.name)
    return out


@pytest.mark.shared_data
def test_real_measurements_match_exactly_like_the_naive_oracle(
    shared_fingerprints: Path, shared_measurements: list[dict[str, Any]]
) -> None:
    fps = load_dir(shared_fingerprints)
    matcher = FingerprintMatcher(fps, body_window=None)
    for m in shared_measurements:
        assert names(matcher.match(m)) == naive(fps, m), m.get("input")


@pytest.mark.shared_data
def test_known_real_blocking(shared_fingerprints: Path, shared_measurements: list[dict[str, Any]]) -> None:
    matcher = FingerprintMatcher(load_dir(shared_fingerprints))
    by_input = {(m.get("probe_cc"), str(m.get("input"))): m for m in shared_measurements}
    # OONI API: confirmed=True; the ISP redirects to its blockpage server (Location header)
    rutor = {m.name: m for m in matcher.match(by_input["RU", "http://rutor.org/"])}
    assert rutor["cl.isp_ru_nevalink_forward"].where == "requests[1].response.headers.location"
    assert rutor["cl.isp_ru_nevalink_forward"].expected_country is True
    # Iran's national DNS injection to 10.10.34.x
    fb = matcher.match(by_input["IR", "https://www.facebook.com/"])
    assert names(fb) == {"ooni.ir_10dot10_ipv4_1"} and is_confirmed(fb)


@pytest.mark.shared_data
def test_update_downloads_validates_and_replaces(shared_fingerprints: Path, tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        name = request.url.path.rsplit("/", 1)[-1]
        return httpx.Response(200, content=(shared_fingerprints / name).read_bytes())

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        results = update(tmp_path, client=client)
    assert [r.fingerprints for r in results] == [226, 1729]
    assert len(load_dir(tmp_path)) == 1955


def test_update_refuses_a_broken_file(tmp_path: Path) -> None:
    (tmp_path / "fingerprints_dns.csv").write_text("keep me\n")
    transport = httpx.MockTransport(lambda r: httpx.Response(200, content=b"name,pattern\nx,y\n"))
    with httpx.Client(transport=transport) as client, pytest.raises(Exception, match="missing column"):
        update(tmp_path, client=client)
    assert (tmp_path / "fingerprints_dns.csv").read_text() == "keep me\n"
    assert not list(tmp_path.glob("*.part"))
