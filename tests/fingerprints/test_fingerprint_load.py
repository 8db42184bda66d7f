from __future__ import annotations

import json
from pathlib import Path

import pytest

from reachwatch.errors import UserError
from reachwatch.fingerprints import (
    Fingerprint,
    append_fingerprints,
    load_dir,
    load_fingerprints,
    read_fingerprints,
)

HEADER = "name,scope,other_names,location_found,pattern_type,pattern,confidence_no_fp,expected_countries,source,exp_url,notes\n"


def write(tmp_path: Path, body: str, name: str = "own.csv", header: str = HEADER) -> Path:
    f = tmp_path / name
    f.write_text(header + body, encoding="utf-8")
    return f


@pytest.mark.shared_data
def test_reads_the_upstream_files(shared_fingerprints: Path) -> None:
    dns = read_fingerprints(shared_fingerprints / "fingerprints_dns.csv")
    http = read_fingerprints(shared_fingerprints / "fingerprints_http.csv")
    assert len(dns) == 226 and {f.location for f in dns} == {"dns"}
    assert len(http) == 1729
    assert sum(f.pattern_type == "regexp" for f in http) == 14
    ae0 = next(f for f in http if f.name == "ooni.ae_0")
    assert ae0.location == "header.server" and ae0.header_name == "server"
    assert ae0.expected_countries == ("AE", "SA") and ae0.confidence_no_fp == 5
    # three names are used on both the DNS and the HTTP side: both are kept
    assert len(load_dir(shared_fingerprints)) == 226 + 1729


@pytest.mark.shared_data
def test_agrees_with_ooni_fastpath_copy(shared_fingerprints: Path) -> None:
    ours = {(f.name, f.location): f for f in load_dir(shared_fingerprints)}
    same = differ = 0
    for name in ("fingerprints_dns.json", "fingerprints_http.json"):
        for item in json.loads((shared_fingerprints / "fastpath_test_copy" / name).read_text("utf-8")):
            fp = ours.get((item["name"], item["location_found"]))
            if fp is None:
                continue
            countries = tuple(c.strip() for c in item["expected_countries"].split(",") if c.strip())
            if (fp.pattern, fp.pattern_type, fp.scope, fp.expected_countries) == (
                item["pattern"],
                item["pattern_type"],
                item["scope"],
                countries,
            ):
                same += 1
            else:
                differ += 1
    assert same > 1500 and differ < same / 20  # an older snapshot: a few rows were edited since


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("x,isp,,body,glob,abc,5,PK,,,\n", "unknown pattern_type 'glob'"),
        ("x,isp,,body,regexp,a(b,5,PK,,,\n", "bad regexp"),
        ("x,isp,,cookie,contains,abc,5,PK,,,\n", "unknown location_found"),
        ("x,isp,,body,contains,,5,PK,,,\n", "empty pattern"),
        ("x,isp,,body,contains,abc,high,PK,,,\n", "confidence_no_fp"),
        ("x,isp,,body,contains,abc\n", "expected 11 columns"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path: Path, row: str, message: str) -> None:
    f = write(tmp_path, "ok,isp,,body,contains,fine,5,PK,,,\n" + row)
    with pytest.raises(UserError, match=message) as info:
        read_fingerprints(f)
    assert f"{f}:3" in info.value.render()


def test_missing_column_is_named(tmp_path: Path) -> None:
    f = write(tmp_path, "x,body,abc\n", header="name,location_found,pattern\n")
    with pytest.raises(UserError, match=r"missing column.*pattern_type") as info:
        read_fingerprints(f)
    assert f"{f}:1" in info.value.render()


def test_duplicate_names_in_one_file(tmp_path: Path) -> None:
    f = write(tmp_path, "x,isp,,body,contains,a,5,,,,\nx,isp,,body,contains,b,5,,,,\n")
    with pytest.raises(UserError, match="duplicate name 'x'"):
        read_fingerprints(f)


def test_minimal_columns_and_header_case(tmp_path: Path) -> None:
    f = write(
        tmp_path,
        "mine,Header.Location,prefix,http://block.example/\n",
        header="name,location_found,pattern_type,pattern\n",
    )
    [fp] = read_fingerprints(f)
    assert fp.location == "header.location" and fp.scope == "" and fp.confirms_blocking


def test_later_files_override_earlier(tmp_path: Path) -> None:
    a = write(tmp_path, "x,isp,,body,contains,old,5,,,,\n", "a.csv")
    b = write(tmp_path, "x,nat,,body,contains,new,5,,,,\n", "b.csv")
    [fp] = load_fingerprints([a, b])
    assert fp.pattern == "new"


def test_missing_directory_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="fingerprints update"):
        load_dir(tmp_path)


def test_append_round_trips(tmp_path: Path) -> None:
    f = tmp_path / "mine.csv"
    fp = Fingerprint(
        name="local.pk_1",
        location="body",
        pattern_type="contains",
        pattern='He said "blocked", then left',
        scope="isp",
        confidence_no_fp=5,
        expected_countries=("PK",),
        notes="multi, comma",
    )
    assert append_fingerprints(f, [fp]) == 1
    assert append_fingerprints(f, [Fingerprint("local.pk_2", "dns", "full", "10.0.0.1")]) == 1
    assert read_fingerprints(f) == [fp, Fingerprint("local.pk_2", "dns", "full", "10.0.0.1")]
