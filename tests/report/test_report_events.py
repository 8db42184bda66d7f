from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from reachwatch.errors import UserError
from reachwatch.report.events import load_events


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "events.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_loads_events_with_optional_columns(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "# events for the PK report\ndate,label,end_date,description\n"
        '2018-07-25,General election,,"Polling day, national assemblies"\n2018-07-13,Leader\'s return,2018-07-14,\n',
    )
    events = load_events(path)
    assert [e.label for e in events] == ["Leader's return", "General election"]
    assert events[0].end_date == dt.date(2018, 7, 14)
    assert events[1].description == "Polling day, national assemblies"


def test_two_columns_are_enough(tmp_path: Path) -> None:
    assert load_events(_write(tmp_path, "date,label\n2018-07-25,Election\n"))[0].label == "Election"


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("date,label\n2018-07-25,Election\n25/07/2018,Bad\n", 3, "not a date"),
        ("date,label\n2018-07-25,\n", 2, "label is empty"),
        ("date,title\n2018-07-25,x\n", 1, "bad header"),
        ("date,label,end_date\n2018-07-25,x,2018-07-01\n", 2, "before"),
        ("date,label\n2018-07-25,x,y,z\n", 2, "fields"),
    ],
)
def test_errors_name_file_and_line(tmp_path: Path, text: str, line: int, what: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(UserError) as err:
        load_events(path)
    assert err.value.where == f"{path}:{line}"
    assert what in err.value.what


def test_missing_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot read"):
        load_events(tmp_path / "nope.csv")
