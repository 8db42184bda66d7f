from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from reachwatch.blockpages import Clusterer, Member, collect, normalise, propose, words
from reachwatch.cli import _register, app
from reachwatch.fingerprints import Fingerprint, FingerprintMatcher, read_fingerprints

TEMPLATE = """<html><head><title>Akses Diblokir</title><script>var t={n};</script></head>
<body><h1>Situs ini diblokir oleh penyedia layanan</h1>
<p>Alamat http://{host}/ tidak dapat diakses sesuai peraturan. Ref {n}</p></body></html>"""
KNOWN = "<html><body>Internet Positif: halaman ini diblokir</body></html>"
REAL = "<html><head><title>{host} home</title></head><body>Welcome to {host}, news and more</body></html>"


def m(uid: str, host: str, asn: str, body: str, technique: str, probe: str = "p") -> dict[str, Any]:
    blocked = technique != "none"
    return {
        "measurement_uid": uid,
        "input": f"http://{host}/",
        "probe_cc": "ID",
        "probe_asn": asn,
        "test_keys": {
            "x_technique": technique,
            "blocking": "http-diff" if blocked else False,
            "accessible": not blocked,
            "requests": [{"response": {"code": 200, "body": body}}],
            "control": {"http_request": {"title": f"{host} home"}},
        },
    }


def sample() -> list[dict[str, Any]]:
    out = [
        m(f"u{i}", host, asn, TEMPLATE.format(host=host, n=i * 7919), "http-blockpage")
        for i, (host, asn) in enumerate(
            [("a.example", "AS1"), ("b.example", "AS1"), ("c.example", "AS2"), ("d.example", "AS2")]
        )
    ]
    out.append(m("k1", "e.example", "AS1", KNOWN, "http-blockpage"))
    out.append(m("c1", "f.example", "AS1", REAL.format(host="f.example"), "none"))
    out.append(m("o1", "g.example", "AS3", "<p>one-off odd page about cats</p>", "http-blockpage"))
    out.append({"input": "x", "test_keys": {"requests": []}})  # no verdict, no verdict module
    return out


def test_normalise_keeps_what_the_page_says() -> None:
    text = normalise(TEMPLATE.format(host="a.example", n=42))
    assert text == normalise(TEMPLATE.format(host="other.example.org", n=7))
    assert "var" not in text and "42" not in text and "example" not in text and "<" not in text
    assert "situs ini diblokir" in text
    assert words("a b a") == {"a", "b"}


def test_clusterer_merges_similar_and_separates_different() -> None:
    c = Clusterer(threshold=0.6)
    for i, body in enumerate(
        [TEMPLATE.format(host="a.example", n=1), TEMPLATE.format(host="b.example", n=2)]
    ):
        c.add(Member(f"u{i}", "", "ID", "AS1", body))
    c.add(Member("x", "", "ID", "AS1", REAL.format(host="z.example")))
    assert [cl.n_measurements for cl in c.clusters] == [2, 1]
    assert c.add(Member("e", "", "ID", "AS1", "<p>12 34</p>")) is None  # nothing readable


def test_collect_labels_known_and_proposes_a_verified_pattern(tmp_path: Path) -> None:
    matcher = FingerprintMatcher(
        [Fingerprint("ooni.id_x", "body", "contains", "Internet Positif", scope="nat")]
    )
    got = collect(sample(), matcher)
    assert got.labelled == {"ooni.id_x": 1}
    assert got.n_blocked == 6  # the line without a verdict: decided by reachwatch.verdict if present
    [cand] = propose(got.clusters, got.controls, min_count=2)
    assert cand.n_measurements == 4 and cand.n_inputs == 4 and cand.scope == "nat"
    assert cand.networks == (("AS1", "ID", 2), ("AS2", "ID", 2))
    assert cand.pattern is not None
    members = [b for b in (TEMPLATE.format(host=h, n=n) for h, n in [("q.example", 3), ("r.example", 4)])]
    assert all(cand.pattern in b for b in members)
    assert not any(cand.pattern in c for c in got.controls)
    fp = cand.to_fingerprint()
    assert fp.expected_countries == ("ID",) and fp.location == "body"


def test_cli_lists_and_saves_loadable_fingerprints(tmp_path: Path) -> None:
    src = tmp_path / "m.jsonl"
    src.write_text("".join(json.dumps(x) + "\n" for x in sample()), encoding="utf-8")
    fpdir = tmp_path / "fps"
    fpdir.mkdir()
    header = "name,location_found,pattern_type,pattern\n"
    (fpdir / "fingerprints_dns.csv").write_text(header)
    (fpdir / "fingerprints_http.csv").write_text(header + "ooni.id_x,body,contains,Internet Positif\n")
    save = tmp_path / "mine.csv"
    _register()
    runner = CliRunner()
    args = ["blockpages", str(src), "--fingerprints", str(fpdir), "--save", str(save)]
    result = runner.invoke(app, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    [cand] = json.loads(result.stdout)
    assert cand["n_measurements"] == 4
    [fp] = read_fingerprints(save)
    assert fp.pattern == cand["pattern"]
    hits = FingerprintMatcher([fp]).match_body(TEMPLATE.format(host="new.example", n=5))
    assert [h.name for h in hits] == [fp.name]
    table = runner.invoke(app, ["blockpages", str(src), "--fingerprints", str(fpdir), "--min-count", "1"])
    assert table.exit_code == 0 and "local.id_" in table.stdout and "one-off" in table.stdout
    csv_out = runner.invoke(app, ["blockpages", str(src), "--fingerprints", str(fpdir), "--format", "csv"])
    assert csv_out.stdout.startswith("name,scope,other_names,location_found")
