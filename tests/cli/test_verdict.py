"""`reachwatch verdict`: one output line per input line, warnings, exit codes."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

VALID = {"test_name": "web_connectivity", "input": "http://a.example/", "report_id": "r1", "measurement_uid": "u1",
         "test_keys": {"queries": [], "control_failure": "connection_refused"}}  # fmt: skip
KEYS = {"input", "blocking", "accessible", "x_technique", "x_rule", "dns_consistency", "body_proportion"}


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reachwatch", "verdict", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_every_line_gets_a_line(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    lines = [
        json.dumps(VALID),
        "not json",
        json.dumps({"test_name": "tor", "input": None}),
        "[1]",
        json.dumps(VALID),
    ]
    path.write_text("\n".join(lines) + "\n")
    result = run(str(path))
    assert result.returncode == 1
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == 5
    assert out[0].keys() >= KEYS and out[0]["report_id"] == "r1" and out[0]["measurement_uid"] == "u1"
    assert out[0]["x_rule"] == "control.unavailable" and "error" not in out[0]
    assert [o["x_rule"] for o in out[1:4]] == [
        "input.not-json",
        "input.not-web-connectivity",
        "input.not-an-object",
    ]
    for o in out[1:4]:
        assert o["blocking"] is None and o["accessible"] is None and o["x_technique"] is None and o["error"]
    assert "line 2" in result.stderr and "line 3" in result.stderr and "line 4" in result.stderr


def test_stdin_all_valid_exits_0() -> None:
    result = run("-", stdin=json.dumps(VALID) + "\n" + json.dumps(VALID) + "\n")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2


def test_table_format() -> None:
    result = run("-", "--format", "table", stdin=json.dumps(VALID) + "\n")
    assert result.returncode == 0
    assert result.stdout.splitlines() == ["1\tnull\tnull\tnull\tcontrol.unavailable\thttp://a.example/"]


def test_missing_file_exits_2(tmp_path: Path) -> None:
    result = run(str(tmp_path / "nope.jsonl"))
    assert result.returncode == 2
    assert "no such file" in result.stderr and "Traceback" not in result.stderr


def test_shared_real_file() -> None:
    data = Path(__file__).resolve().parents[3] / "shared" / "data" / "ooni" / "measurements_real.jsonl"
    if not data.is_file():
        pytest.skip(f"shared data not found at {data}")
    result = run(str(data))
    assert result.returncode == 1  # the file mixes other tests in
    assert len(result.stdout.splitlines()) == len(data.read_text().splitlines())


def test_gzip_files_and_pipes_are_read(tmp_path: Path) -> None:
    """OONI publishes .jsonl.gz; <(zcat ...) is a pipe, not a regular file."""
    plain = "\n".join([json.dumps(VALID), "not json", json.dumps(VALID)]) + "\n"
    gz = tmp_path / "m.jsonl.gz"
    gz.write_bytes(gzip.compress(plain.encode()))
    result = run(str(gz))
    assert result.returncode == 1, result.stderr
    assert [json.loads(line)["x_rule"] for line in result.stdout.splitlines()] == [
        "control.unavailable",
        "input.not-json",
        "control.unavailable",
    ]
    piped = subprocess.run(
        ["bash", "-c", f'{sys.executable} -m reachwatch verdict <(cat "{gz}")'],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert len(piped.stdout.splitlines()) == 3, piped.stderr


def test_cut_gzip_keeps_the_lines_read_and_names_where(tmp_path: Path) -> None:
    lines = [json.dumps({**VALID, "input": f"http://a{i}.example/", "pad": str(i) * 3000}) for i in range(50)]
    data = gzip.compress(("\n".join(lines) + "\n").encode())
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(data[: len(data) // 2])
    result = run(str(cut))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    judged = result.stdout.splitlines()
    assert 0 < len(judged) < 50
    assert f"cannot read past line {len(judged)}" in result.stderr and str(cut) in result.stderr


def test_a_directory_is_an_error(tmp_path: Path) -> None:
    result = run(str(tmp_path))
    assert result.returncode == 2 and "Is a directory" in result.stderr and "Traceback" not in result.stderr


def test_odd_strings_keep_one_line_per_input_line() -> None:
    """A lone surrogate (valid JSON) cannot be written as UTF-8; a newline or tab in a table cell
    would add a line or a column."""
    odd = [
        {**VALID, "input": "\ud800x"},
        {**VALID, "input": "a\nb\tc"},
        VALID,
    ]
    stdin = "\n".join(json.dumps(m) for m in odd) + "\n"
    result = run("-", stdin=stdin)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["input"] for line in result.stdout.splitlines()] == [m["input"] for m in odd]
    table = run("-", "--format", "table", stdin=stdin)
    assert table.returncode == 0, table.stderr
    rows = table.stdout.splitlines()
    assert len(rows) == 3 and all(len(r.split("\t")) == 6 for r in rows)
    assert rows[1].endswith('"a\\nb\\tc"')
