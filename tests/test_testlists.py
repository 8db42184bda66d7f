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
