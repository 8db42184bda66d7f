"""`reachwatch serve` and `reachwatch submit` as a user runs them (subprocesses, loopback)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from cli_helpers import free_port, reachwatch

from collector.conftest import MINIMAL

SAMPLE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ooni" / "measurements_real.jsonl"


def _serve(tmp_path: Path, port: int, *args: str) -> subprocess.Popen[bytes]:
    """``reachwatch serve`` on a DuckDB file in ``tmp_path``; its output (logs) on its stdout."""
    command = [sys.executable, "-m", "reachwatch", "serve", "--db", str(tmp_path / "c.duckdb")]
    return subprocess.Popen(
        [*command, "--port", str(port), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def test_submit_queues_until_the_collector_is_back(tmp_path: Path) -> None:
    if not SAMPLE.is_file():
        pytest.skip(f"shared OONI data absent: {SAMPLE}")
    lines = [
        ln for ln in SAMPLE.read_text().splitlines() if json.loads(ln).get("test_name") == "web_connectivity"
    ]
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text("\n".join(lines[:5]) + "\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    outbox = tmp_path / "outbox"
    down = reachwatch("submit", str(jsonl), "--collector", url, "--outbox", str(outbox), "--retry-for", "0")
    assert down.returncode == 1 and "pending 5" in down.stdout
    server = _serve(tmp_path, port)
    try:
        up = reachwatch(
            "submit", str(jsonl), "--collector", url, "--outbox", str(outbox), "--retry-for", "30"
        )
        assert up.returncode == 0, up.stdout + up.stderr
        assert "sent 5, rejected 0" in up.stdout and "pending 0" in up.stdout
        count = httpx.get(f"{url}/api/v1/measurements").json()["metadata"]["count"]
        assert count == 5
    finally:
        server.kill()
        out = server.communicate(timeout=10)[0]
    said = out.decode()
    assert f"reachwatch collector on {url} " in said  # where it answers, said once at the start
    assert "127.0.0.1" not in said.replace(url, ""), "the server printed a client address"


def test_submit_names_the_lines_the_collector_refused(tmp_path: Path) -> None:
    """A refused measurement is named by its file and line (every line that held it), not by the
    collector's numbering of the batch it went in; and the run exits 1: not all was stored."""
    good = dict(MINIMAL, input="http://a.example/")
    late = dict(MINIMAL, input="http://b.example/", measurement_start_time="2999-01-01 00:00:00")
    lines = [good, late, dict(good, input="http://c.example/"), {"input": "http://d.example/"}, late]
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text("".join(json.dumps(m) + "\n" for m in lines))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    outbox = tmp_path / "outbox"
    server = _serve(tmp_path, port)
    try:
        r = reachwatch("submit", str(jsonl), "--collector", url, "--outbox", str(outbox), "--retry-for", "30")
    finally:
        server.kill()
        server.communicate(timeout=10)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "sent 2, rejected 2" in r.stdout and "pending 0" in r.stdout
    said = r.stderr.splitlines()
    assert f"{jsonl}:2, {jsonl}:5: refused: 422: measurement_start_time 2999-01-01" in r.stderr
    assert any(s.startswith(f"{jsonl}:4: refused: 422: measurement_start_time: Field required") for s in said)
    assert not any(
        ": refused: " in s and " line " in s.split(": refused: ")[1].split("(line")[0] for s in said
    )
    assert "correct those lines and submit them again" in r.stderr
    # in the file's order, not the outbox's (an outside check, session 17)
    assert r.stderr.index(f"{jsonl}:2, ") < r.stderr.index(f"{jsonl}:4: ")
    errors = sorted((outbox / "rejected").glob("*.error"))
    assert sorted(e.read_text().splitlines()[0] for e in errors) == [
        f"from {jsonl}:2, {jsonl}:5",
        f"from {jsonl}:4",
    ]
    assert list((outbox / "pending").iterdir()) == []  # the origins of those sent went with them


def test_serve_rejects_bad_arguments(tmp_path: Path) -> None:
    r = reachwatch("serve", "--db", str(tmp_path / "x.duckdb"), "--asn-db", str(tmp_path / "missing.mmdb"))
    assert r.returncode == 2 and "no such file" in r.stderr
    (tmp_path / "cert.pem").write_text("junk")
    r = reachwatch("serve", "--db", str(tmp_path / "x.duckdb"), "--tls-cert", str(tmp_path / "cert.pem"))
    assert r.returncode == 2 and "--tls-key" in r.stderr and "Traceback" not in r.stderr
    r = reachwatch("serve", "--db", str(tmp_path / "x.duckdb"), "--trusted-proxy", "my-proxy")
    assert r.returncode == 2 and "'my-proxy' is not an IP address" in r.stderr
    r = reachwatch("serve", "--db", str(tmp_path / "x.duckdb"), "--ingest-workers", "-1")
    assert r.returncode == 2 and "--ingest-workers -1" in r.stderr
    r = reachwatch(
        "serve", "--db", str(tmp_path / "x.duckdb"), "--no-journal", "--journal-dir", str(tmp_path)
    )
    assert r.returncode == 2 and "--journal-dir and --no-journal" in r.stderr
    r = reachwatch("serve", "--db", str(tmp_path / "x.duckdb"), "--db-memory", "lots")
    assert r.returncode == 2 and "--db-memory" in r.stderr and "512MB" in r.stderr
    for size, said in (
        ("1KB", "too little"),
        ("0MB", "too little"),
        ("100000000TB", "more than this machine"),
    ):
        r = reachwatch("serve", "--db", str(tmp_path / "x.duckdb"), "--db-memory", size)
        assert r.returncode == 2 and said in r.stderr and "Traceback" not in r.stderr, (size, r.stderr)
    r = reachwatch("serve", "--clickhouse", "http://127.0.0.1:1/db", "--db-memory", "1GB")
    assert r.returncode == 2 and "ClickHouse" in r.stderr
    r = reachwatch("submit", str(tmp_path / "missing.jsonl"), "--collector", "http://127.0.0.1:1")
    assert r.returncode == 2 and "no such file" in r.stderr


def test_serve_says_why_it_cannot_open_the_store(tmp_path: Path) -> None:
    """Not a traceback from uvicorn's startup: the store is opened once before serving."""
    bad = tmp_path / "not-a-database.duckdb"
    bad.write_text("these are not the bytes of a DuckDB file\n")
    cases = [
        (["--db", str(bad)], "not a valid DuckDB database file"),
        (["--db", str(tmp_path / "missing-dir" / "x.duckdb")], "does not exist"),
        (["--clickhouse", f"http://127.0.0.1:{free_port()}/db"], "cannot reach ClickHouse"),
        (["--db", str(tmp_path / "x.duckdb"), "--journal-dir", str(bad)], "cannot use this directory"),
        # both stores: ClickHouse was used and --db ignored without a word
        (["--db", str(tmp_path / "x.duckdb"), "--clickhouse", "http://127.0.0.1:1/db"], "give one store or"),
        # a data file: DuckDB would have kept the store in memory, lost at the next start
        (["--db", str(tmp_path / "m.jsonl")], "not a DuckDB database file"),
    ]
    (tmp_path / "m.jsonl").write_text('{"probe_cc": "PK"}\n')
    for args, why in cases:
        r = reachwatch("serve", *args, "--port", str(free_port()), timeout=30)
        assert r.returncode == 2, r.stderr
        assert why in r.stderr and "Traceback" not in r.stderr


def test_serve_says_why_it_cannot_read_a_geo_database(tmp_path: Path) -> None:
    """A file that is not a MaxMind DB was a traceback from uvicorn's startup (exit 3), and it left
    an empty journal segment behind; a directory was "no such file"."""
    bad = tmp_path / "bad.mmdb"
    bad.write_text("these are not the bytes of a MaxMind DB\n")
    db = tmp_path / "x.duckdb"
    for args, why in (
        (["--asn-db", str(bad)], "cannot read MaxMind DB"),
        (["--country-db", str(bad)], "cannot read MaxMind DB"),
        (["--asn-db", str(tmp_path)], "a directory, not a file"),
    ):
        r = reachwatch("serve", "--db", str(db), *args, "--port", str(free_port()), timeout=30)
        assert r.returncode == 2, r.stderr
        assert why in r.stderr and "Traceback" not in r.stderr, r.stderr
    journal = tmp_path / "x.duckdb.journal"
    assert not journal.exists() or list(journal.iterdir()) == []


def test_submit_says_why_measurements_stay_queued(tmp_path: Path) -> None:
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text('{"test_name": "web_connectivity"}\n')
    url = f"http://127.0.0.1:{free_port()}"
    r = reachwatch(
        "submit", str(jsonl), "--collector", url, "--outbox", str(tmp_path / "o"), "--retry-for", "0"
    )
    assert r.returncode == 1 and "pending 1" in r.stdout
    assert "cannot reach" in r.stderr and "1 stay queued" in r.stderr and "Traceback" not in r.stderr
    # a pipe (process substitution, /dev/stdin) is read like a file

    def queue_in(name: str) -> list[str]:
        return ["--outbox", str(tmp_path / name), "--retry-for", "0"]

    piped = subprocess.run(
        [sys.executable, "-m", "reachwatch", "submit", "/dev/stdin", "--collector", url, *queue_in("p")],
        input='{"test_name": "web_connectivity"}\n',
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert piped.returncode == 1 and "pending 1" in piped.stdout, piped.stderr
    # a file saved with a UTF-8 byte order mark (Windows) was "line 1: not a JSON object"
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + jsonl.read_bytes().replace(b"\n", b"\r\n"))
    r = reachwatch("submit", str(bom), "--collector", url, *queue_in("b"))
    assert r.returncode == 1 and "pending 1" in r.stdout, r.stderr


def test_submit_queues_nothing_from_a_file_with_a_bad_line(tmp_path: Path) -> None:
    """A file whose 5th line was not JSON exited 2 but left its first 4 lines queued, sent by the
    next run: the whole file is checked first, a file or a pipe alike, and nothing is queued."""
    lines = [json.dumps({**MINIMAL, "input": f"http://{i}.example/"}) for i in range(3)]
    # an invalid measurement (the collector's to refuse), then line 5: an array, or a cut line
    head = [*lines, '{"test_name": "web_connectivity"}']
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text("\n".join([*head, "[1, 2]", *lines]) + "\n")
    url = f"http://127.0.0.1:{free_port()}"
    outbox = tmp_path / "o"
    r = reachwatch("submit", str(jsonl), "--collector", url, "--outbox", str(outbox), "--retry-for", "0")
    assert r.returncode == 2 and f"{jsonl}:5: not a JSON object" in r.stderr, r.stderr
    assert list((outbox / "pending").iterdir()) == [] and r.stdout == ""
    assert "how to fix: make line 5 one measurement" in r.stderr and "Traceback" not in r.stderr
    piped = subprocess.run(
        [
            sys.executable,
            "-m",
            "reachwatch",
            "submit",
            "/dev/stdin",
            "--collector",
            url,
            "--outbox",
            str(outbox),
        ],
        input="\n".join([*head, '{"truncated": ', *lines]) + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert piped.returncode == 2 and "/dev/stdin:5: not a JSON object" in piped.stderr, piped.stderr
    assert list((outbox / "pending").iterdir()) == []


def test_serve_says_the_port_is_taken_before_creating_the_store(tmp_path: Path) -> None:
    """A port in use was uvicorn's "ERROR: [Errno 98]" (exit 3), after the DuckDB file and its
    journal had been created."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        db = tmp_path / "x.duckdb"
        r = reachwatch("serve", "--db", str(db), "--port", str(port), timeout=30)
    assert r.returncode == 2, r.stderr
    assert f"cannot listen on 127.0.0.1 port {port}" in r.stderr and "another --port" in r.stderr
    assert not db.exists()


def test_serve_refuses_settings_that_cannot_work(tmp_path: Path) -> None:
    """These started a collector that answered every request 413 (--max-body 0) or 503
    (--max-pending 0), limited nothing (--rate -1, nan), or took a --clickhouse URL without a
    scheme for a DuckDB path (an error about a DuckDB extension); an address not of this machine
    was told to try another port."""
    db = str(tmp_path / "x.duckdb")
    for args, why in (
        (["--max-body", "0"], "--max-body 0: give at least 1"),
        (["--max-pending", "0"], "--max-pending 0: give at least 1"),
        (["--rate", "-1"], "--rate -1.0"),
        (["--rate", "nan"], "--rate nan"),
        (["--burst", "0"], "--burst 0.0: give at least 1"),
        (["--rate-exempt", "127.0.0.0/8,localhost"], "--rate-exempt: 'localhost' is not an IP address"),
        (["--clickhouse", "localhost:8123"], "not a ClickHouse HTTP URL"),
        (["--host", "192.0.2.1"], "give an address of this machine as --host"),
        (["--host", "::ffff:127.0.0.1"], "give an address of this machine as --host"),
    ):
        r = reachwatch("serve", "--db", db, *args, "--port", str(free_port()), timeout=30)
        assert r.returncode == 2, (args, r.stderr)
        assert why in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
    assert not Path(db).exists()


@pytest.mark.parametrize("url", ["127.0.0.1:8000", "ftp://127.0.0.1:8000/", "http://"])
def test_submit_says_what_is_wrong_with_the_collector_url(tmp_path: Path, url: str) -> None:
    """A URL without http:// was "cannot reach ...: UnsupportedProtocol" after retrying for
    --retry-for seconds (60 by default), its measurements left queued, where `measure
    --collector` refuses the same URL at once."""
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text('{"test_name": "web_connectivity"}\n')
    r = reachwatch("submit", str(jsonl), "--collector", url, "--outbox", str(tmp_path / "o"))
    assert r.returncode == 2, r.stderr
    assert "--collector" in r.stderr and "http://" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()  # nothing queued for a collector that cannot be


@pytest.mark.parametrize(
    ("args", "limited"),
    [
        ((), False),  # loopback is this host's own: not limited by default
        (("--burst", "2"), True),  # a limit asked for applies to every submitter
        (("--rate", "1000"), False),  # a bucket of 5,000 holds a batch of 3
        (("--burst", "2", "--rate-exempt", "127.0.0.0/8"), False),
    ],
)
def test_serve_limits_loopback_only_when_a_limit_is_asked_for(
    tmp_path: Path, args: tuple[str, ...], limited: bool
) -> None:
    """A batch of 3 lines is more than a bucket of 2 ever holds: a 413 where the limit applies."""
    port = free_port()
    server = _serve(tmp_path, port, *args)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                httpx.get(f"{url}/api/v1/health", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        body = "\n".join(json.dumps({**MINIMAL, "input": f"https://site{i}.example/"}) for i in range(3))
        r = httpx.post(f"{url}/api/v1/measurements", content=body, timeout=30)
        assert r.status_code == (413 if limited else 200), r.text
    finally:
        server.kill()
        server.communicate(timeout=10)


def test_a_directory_that_cannot_be_made_is_a_clear_error(tmp_path: Path) -> None:
    """An --outbox or a `geoip update --dir` that is a file, or where nothing can be made (/proc),
    ended in a traceback; a negative --retry-for was taken."""
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text("")
    a_file = tmp_path / "afile"
    a_file.write_text("x")
    url = "http://127.0.0.1:9/"
    for args, where in (
        (("submit", str(jsonl), "--collector", url, "--outbox", str(a_file)), str(a_file)),
        (("submit", str(jsonl), "--collector", url, "--outbox", "/proc/reachwatch-outbox"), "/proc/"),
        (("geoip", "update", "--dir", str(a_file)), str(a_file)),
        (("geoip", "update", "--dir", "/proc/reachwatch-geoip"), "/proc/"),
    ):
        r = reachwatch(*args, timeout=30)
        assert r.returncode == 2, (args, r.stderr)
        assert where in r.stderr and "how to fix" in r.stderr and "Traceback" not in r.stderr, (
            args,
            r.stderr,
        )
    r = reachwatch(
        "submit", str(jsonl), "--collector", url, "--retry-for", "-3", "--outbox", str(tmp_path / "o")
    )
    assert r.returncode == 2 and "--retry-for" in r.stderr and "Traceback" not in r.stderr, r.stderr
