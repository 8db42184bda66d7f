from __future__ import annotations

from starlette.testclient import TestClient

from reachwatch.web import CSP, SECURITY_HEADERS, MemorySource, overview_page
from reachwatch.web.observations import view


def test_pages_answer_with_security_headers(client: TestClient, hostile_uid: str) -> None:
    for path in ("/dash/", "/dash/country/PK", "/dash/domain/dawn.com?cc=PK", "/dash/asn/AS64505",
                 f"/dash/measurement/{hostile_uid}"):  # fmt: skip
        r = client.get(path)
        assert r.status_code == 200, path
        for name, value in SECURITY_HEADERS.items():
            assert r.headers[name] == value
        assert "<script" not in r.text.lower()
    assert "'unsafe-inline'" not in CSP and "default-src 'none'" in CSP


def test_links_follow_the_mount_point(client: TestClient) -> None:
    html = client.get("/dash/country/PK").text
    assert 'href="/dash/asn/AS64501"' in html and 'href="/dash/domain/awamiworkersparty.org?cc=PK"' in html
    assert 'href="/dash/measurement/2018' in html


def test_bad_input_is_400_and_unknown_is_404(client: TestClient) -> None:
    assert client.get("/dash/asn/64501x").status_code == 400
    assert client.get("/dash/country/PK?since=yesterday").status_code == 400
    assert client.get("/dash/domain/dawn.com?cc=p1").status_code == 400
    assert client.get("/dash/country/XX").status_code == 404
    assert client.get("/dash/measurement/unknown").status_code == 404
    r = client.get("/dash/domain/dawn.com?since=2018-07-20&until=2018-07-22")
    assert r.status_code == 200 and "20 Jul 2018 – 22 Jul 2018" in r.text


def test_places_and_sites_in_any_spelling_the_api_takes(client: TestClient) -> None:
    """The dashboard answered 404 for ``WWW.Dawn.COM``, 400 for ``/country/pk`` and for a Unicode
    domain, which the API and the CLI take (an outside check, session 17)."""
    same = client.get("/dash/domain/dawn.com?cc=PK").text
    for path in ("/dash/domain/DAWN.com.?cc=pk", "/dash/domain/Dawn.Com?cc=Pk"):
        r = client.get(path)
        assert r.status_code == 200 and r.text == same, path
    assert client.get("/dash/country/pk").text == client.get("/dash/country/PK").text
    for asn in ("as64501", "64501", "AS064501"):
        assert client.get(f"/dash/asn/{asn}").text == client.get("/dash/asn/AS64501").text
    # a Unicode name is looked up as stored (punycode): none here, so a 404, not a 400
    assert client.get("/dash/domain/яндекс.рф").status_code == 404


def test_measurement_page_shows_raw_observations_escaped(client: TestClient, hostile_uid: str) -> None:
    html = client.get(f"/dash/measurement/{hostile_uid}").text
    assert "<script>window" not in html and "<h1 id=injected" not in html and "<img src=x" not in html
    assert "&lt;/pre&gt;&lt;h1 id=injected&gt;" in html
    assert "A 10.10.34.35" in html and "connection_reset" in html and "TLSv1.3" in html
    assert "CN=\\&lt;script\\&gt;" in html  # the certificate's subject, escaped
    assert "unparseable certificate" in html
    assert "binary body" in html


def test_observations_survive_malformed_parts(source: MemorySource, hostile_uid: str) -> None:
    m = source.measurement(hostile_uid)
    assert m is not None
    broken = m.model_copy(
        update={"test_keys": {"queries": "nope", "requests": [{"response": None}], "tcp_connect": [1]}}
    )
    v = view(broken)
    assert v.dns == [] and len(v.http) == 1 and v.tcp[0].address == ":"


def test_overview_is_a_pure_function(source: MemorySource) -> None:
    html = overview_page(source.summary(), source.period(), base="/x")
    assert 'href="/x/country/PK?since=2018-07-01&amp;until=2018-07-30"' in html and "Pakistan" in html
