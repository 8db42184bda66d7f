"""`reachwatch aggregate`, `report`, `analyze` as a user runs them (a subprocess, exit codes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from store.backends import clickhouse_url
from store.rows import fill, mixed_rows, row

__all__ = ["clickhouse_url"]

EXE = str(Path(sys.executable).with_name("reachwatch"))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("cli") / "m.duckdb")
    fill(path, mixed_rows())
    return path


def test_aggregate_json_and_csv(db: str) -> None:
    out = run("aggregate", "--db", db, "--cc", "pk", "--domain", "B.org")
    assert out.returncode == 0, out.stderr
    (rec,) = [orjson.loads(line) for line in out.stdout.splitlines()]
    assert rec["state"] == "blocked" and rec["n_probes"] == 3 and len(rec["witnesses"]) == 5
    assert {"blocked_low", "blocked_high", "dominant_technique", "first_seen", "last_seen"} <= rec.keys()
    csv = run("aggregate", "--db", db, "--by", "probe_cc", "--format", "csv", "--until", "2018-07-25")
    assert csv.returncode == 0 and csv.stdout.splitlines()[0].startswith("probe_cc,state,rule_id")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--by", "isp"), "bad --by"),
        (("--format", "xml"), "--format"),
        (("--since", "2018-07-26", "--until", "2018-07-25"), "before --since"),
        (("--cc", "PAK"), "two-letter"),
        (("--clickhouse", "http://127.0.0.1:1/x"), "exactly one"),
    ],
)
def test_aggregate_bad_flags_are_clear_errors(db: str, args: tuple[str, ...], message: str) -> None:
    out = run("aggregate", "--db", db, *args)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr


def test_sites_are_named_as_a_person_names_them(tmp_path: Path) -> None:
    """The API found ``Яндекс.рф`` and ``WWW.Example.ORG.``; the CLI only lower-cased ``--domain``
    and found nothing for either, nor for a URL (an outside check, session 17)."""
    path = str(tmp_path / "m.duckdb")
    fill(
        path,
        [
            row(n + k * 10, domain=d, probe=f"p{n % 2}")
            for n in range(1, 5)
            for k, d in enumerate(("xn--d1acpjx3f.xn--p1ai", "www.example.org"))
        ],
    )
    for given, stored in (
        ("Яндекс.рф", "xn--d1acpjx3f.xn--p1ai"),
        ("WWW.Example.ORG.", "www.example.org"),
        ("https://www.example.org/news?x=1", "www.example.org"),
    ):
        out = run("aggregate", "--db", path, "--domain", given, "--by", "domain")
        assert out.returncode == 0, out.stderr
        assert [orjson.loads(line)["domain"] for line in out.stdout.splitlines()] == [stored], given
    out = run("aggregate", "--db", path, "--domain", "https:///x")
    assert out.returncode == 2 and "names no site" in out.stderr


def test_unattributed_measurements_are_left_out_and_said_so(tmp_path: Path) -> None:
    """The per-network findings keep to measurements the collector placed on a network; the others
    are counted on stderr, and ``--include-unattributed`` takes them in (an outside check, session 17)."""
    path = str(tmp_path / "m.duckdb")
    fill(
        path,
        [row(n, probe=f"p{n % 2}") for n in range(1, 5)]
        + [row(9, blocking="dns", accessible=False, technique="dns-hijack", attributed=False)],
    )
    out = run("aggregate", "--db", path, "--by", "probe_asn")
    assert out.returncode == 0, out.stderr
    (rec,) = [orjson.loads(line) for line in out.stdout.splitlines()]
    assert (rec["state"], rec["n_measurements"]) == ("ok", 4)
    assert "note: 1 measurement left out: the collector could not place its submitter" in out.stderr
    out = run("aggregate", "--db", path, "--by", "probe_asn", "--include-unattributed")
    (rec,) = [orjson.loads(line) for line in out.stdout.splitlines()]
    assert (rec["state"], rec["n_measurements"], out.stderr) == ("blocked", 5, "")
    # a store of unattributed measurements only (a collector run without databases): said how to go on
    only = str(tmp_path / "only.duckdb")
    fill(only, [row(n, probe=f"p{n % 2}", attributed=False) for n in range(1, 5)])
    out = run("report", "--db", only, "--out", str(tmp_path / "r"), "--no-pdf")
    assert (
        out.returncode == 2
        and "no attributed measurements in this selection; 4 measurements left out" in out.stderr
    )
    assert "--include-unattributed" in out.stderr
    out = run("report", "--db", only, "--out", str(tmp_path / "r"), "--no-pdf", "--include-unattributed")
    assert out.returncode == 0, out.stderr


def test_aggregate_without_a_store_is_a_user_error(tmp_path: Path) -> None:
    out = run("aggregate", "--db", str(tmp_path / "missing.duckdb"))
    assert out.returncode == 2 and "no such DuckDB file" in out.stderr


def test_report_writes_files_and_prints_them(db: str, tmp_path: Path) -> None:
    events = tmp_path / "events.csv"
    events.write_text("date,label\n2018-07-25,Election day\n")
    out = run("report", "--db", db, "--out", str(tmp_path / "r"), "--cc", "PK", "--events", str(events),
              "--title", "Pakistan, July 2018", "--no-pdf")  # fmt: skip
    assert out.returncode == 0, out.stderr
    printed = out.stdout.split()
    assert str(tmp_path / "r" / "report.html") in printed and all(Path(p).is_file() for p in printed)
    html = (tmp_path / "r" / "report.html").read_text()
    assert "Election day" in html and "b.org" in html
    empty = run("report", "--db", db, "--out", str(tmp_path / "e"), "--cc", "FR", "--no-pdf")
    assert empty.returncode == 2 and "no measurements" in empty.stderr


def test_analyze_prints_what_it_did(db: str, tmp_path: Path) -> None:
    out = run("analyze", "--db", db, "--workers", "1", "--fingerprints", str(tmp_path / "nowhere"))
    assert out.returncode == 2 and "no such directory" in out.stderr


def test_analyze_duckdb_file(tmp_path: Path) -> None:
    db = str(tmp_path / "a.duckdb")  # its own: analyze rewrites the verdicts
    fill(db, mixed_rows())
    out = run("analyze", "--db", db, "--workers", "1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("analysed ") and "refreshed" in out.stdout
    again = run("analyze", "--db", db, "--workers", "1")
    assert again.returncode == 0 and again.stdout.startswith("analysed 0 measurements")


@pytest.mark.clickhouse
def test_analyze_clickhouse_url(clickhouse_url: str) -> None:
    url = f"{clickhouse_url}/cli_analyze"
    fill(url, mixed_rows())
    out = run("analyze", "--db", url, "--workers", "1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"analysed {len(mixed_rows())} measurements")
    again = run("analyze", "--clickhouse", url, "--workers", "1")
    assert again.returncode == 0 and again.stdout.startswith("analysed 0 measurements"), again.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--db", "http://127.0.0.1:9/x"), "cannot reach ClickHouse"),
        (("--clickhouse", "ftp://h/x"), "not an http(s) URL"),
        (("--db", "http://127.0.0.1:9/bad-name"), "bad database name"),
        (("--db", "nowhere.duckdb"), "no such DuckDB file"),
        (("--workers", "-1", "--db", "x.duckdb"), "--workers -1"),
    ],
)
def test_analyze_bad_input_is_a_clear_error(args: tuple[str, ...], message: str) -> None:
    out = run("analyze", *args)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr
