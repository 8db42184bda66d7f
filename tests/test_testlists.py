from pathlib import Path

import pytest

from reachwatch.errors import UserError
from reachwatch.testlists import collect_targets, read_testlist

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "testlists"
HEADER = "url,category_code,category_description,date_added,source,notes\n"


def test_reads_citizen_lab_rows(tmp_path: Path) -> None:
    f = tmp_path / "pk.csv"
    f.write_text(HEADER + 'https://party.example/,POLR,Political,2018-06-01,citizenlab,"a, note"\n')
    [t] = read_testlist(f)
    assert t.url == "https://party.example/"
    assert t.category_code == "POLR"
    assert t.hostname == "party.example"


def test_bad_row_names_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.csv"
    f.write_text(HEADER + "http://ok.example/,NEWS,News,2018-01-01,x,\nftp://nope/,NEWS,News,2018-01-01,x,\n")
    with pytest.raises(UserError) as info:
        read_testlist(f)
    assert f"{f}:3" in info.value.render()


def test_wrong_column_count_is_an_error(tmp_path: Path) -> None:
    f = tmp_path / "bad.csv"
    f.write_text(HEADER + "http://ok.example/,NEWS\n")
    with pytest.raises(UserError, match="expected 6 columns"):
        read_testlist(f)


def test_urls_and_lists_are_merged_without_duplicates(tmp_path: Path) -> None:
    f = tmp_path / "l.csv"
    f.write_text(HEADER + "http://a.example/,NEWS,News,2018-01-01,x,\n")
    targets = collect_targets(["http://a.example/", "https://b.example/"], [f])
    assert [t.url for t in targets] == ["http://a.example/", "https://b.example/"]


@pytest.mark.shared_data
def test_every_shared_list_parses() -> None:
    if not SHARED.is_dir():
        pytest.skip(f"../shared/data not found at {SHARED}")
    for name in ("global.csv", "pk.csv", "ir.csv", "ru.csv", "in.csv", "cn.csv", "mm.csv"):
        assert len(read_testlist(SHARED / name)) > 50


def test_odd_but_valid_lists_are_read(tmp_path: Path) -> None:
    """BOM, CRLF, quoted commas and line breaks, U+2028 in a note, extra columns, odd URLs."""
    f = tmp_path / "odd.csv"
    f.write_bytes(
        (
            "\ufeff" + HEADER.rstrip("\n") + ",extra\r\n"
            'https://A.Example:8443/p?q=1&r=2,NEWS,"News, Media",2020-01-01,x,"two\r\nlines",z\r\n'
            "http://xn--bcher-kva.example/,NEWS,N,2020,x,a\u2028b,z\r\n"
            "http://bücher.example/,NEWS,N,2020,x,,z\r\n"
            "http://192.0.2.7/,NEWS,N,2020,x,,z\r\n"
            "http://[2001:db8::1]:8080/x,NEWS,N,2020,x,,z\r\n"
            "http://under_score.example/,NEWS,N,2020,x,,z\r\n"
            "http://a.example/,NEWS,N,2020,x,,z\r\n"
            "https://a.example/,NEWS,N,2020,x,,z\r\n"
        ).encode()
    )
    targets = read_testlist(f)
    assert [(t.hostname, t.line) for t in targets] == [
        ("a.example", 2),  # its quoted note spans lines 2 and 3
        ("xn--bcher-kva.example", 4),
        ("bücher.example", 5),
        ("192.0.2.7", 6),
        ("2001:db8::1", 7),
        ("under_score.example", 8),
        ("a.example", 9),
        ("a.example", 10),
    ]
    assert targets[0].url == "https://A.Example:8443/p?q=1&r=2"


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("http://[::1/,NEWS,N,2020,x,", "not a valid URL (Invalid IPv6 URL)"),
        ("http://a example/,NEWS,N,2020,x,", "host 'a example' is not a valid domain name"),
        ("http://a..b/,NEWS,N,2020,x,", "empty label"),
        ("http://1.2.3.999/,NEWS,N,2020,x,", "neither a domain name nor a valid IP address"),
        ("http://a.example:0/,NEWS,N,2020,x,", "port 0"),
        ("http://a.example:99999/,NEWS,N,2020,x,", "Port out of range"),
        ('"http://a.exa\nmple/",NEWS,N,2020,x,', "control characters"),
        (",NEWS,N,2020,x,", "is not an http:// or https:// URL"),
        ("javascript:alert(1),NEWS,N,2020,x,", "is not an http:// or https:// URL"),
        ('https://a.example/,NEWS,"unclosed,2020,x,', "not valid CSV"),
    ],
)
def test_bad_rows_name_the_physical_line(tmp_path: Path, row: str, expected: str) -> None:
    f = tmp_path / "bad.csv"
    # a quoted field with a line break first: the bad row starts on line 4, the 3rd record
    f.write_text(HEADER + 'http://ok.example/,NEWS,"multi\nline",2018-01-01,x,\n' + row + "\n")
    with pytest.raises(UserError) as info:
        read_testlist(f)
    message = info.value.render()
    assert f"{f}:4" in message and expected in message


def test_bad_url_arguments_are_errors_not_tracebacks() -> None:
    with pytest.raises(UserError, match="argument 2: 'http://\\[::1/' is not a valid URL"):
        collect_targets(["http://ok.example/", "http://[::1/"], [])


def test_urls_differing_only_in_host_case_or_final_dot_are_one_target(tmp_path: Path) -> None:
    listed = tmp_path / "l.csv"
    listed.write_text(
        "url,category_code,category_description,date_added,source,notes\n"
        "http://a.example./x,NEWS,N,2020,x,\nhttp://a.example/X,NEWS,N,2020,x,\n"
    )
    targets = collect_targets(["HTTP://A.Example/x"], [listed])
    assert [t.url for t in targets] == ["HTTP://A.Example/x", "http://a.example/X"]  # paths differ
