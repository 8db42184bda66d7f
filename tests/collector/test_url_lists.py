"""The test lists' categories given to measurements that name none (OONI probes' never do)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from collector.conftest import MINIMAL, collector
from reachwatch.collector.config import Settings
from reachwatch.collector.url_lists import Categories, UrlLists
from reachwatch.errors import UserError

HEADER = "url,category_code,category_description,date_added,source,notes\n"


def _lists(tmp_path: Path) -> Path:
    d = tmp_path / "lists"
    d.mkdir()
    (d / "global.csv").write_text(
        HEADER
        + "https://www.dawn.com/,NEWS,News Media,2017-01-01,,\nhttps://www.hrw.org/,HUMR,Rights,2017-01-01,,\n"
    )
    (d / "pk.csv").write_text(HEADER + "https://www.dawn.com/,POLR,Political Criticism,2017-01-01,,\n")
    return d


def test_the_countrys_list_first_then_the_global_one_urls_as_the_lists_compare_them(tmp_path: Path) -> None:
    categories = Categories(UrlLists.load([_lists(tmp_path)]))
    assert categories.of("PK", "https://www.dawn.com/") == "POLR"
    assert categories.of("IR", "https://www.dawn.com/") == "NEWS"
    assert categories.of("PK", "HTTPS://WWW.HRW.ORG./") == "HUMR"  # scheme and host in any case
    assert categories.of("PK", "https://www.hrw.org/other") is None
    assert categories.of(None, "https://www.hrw.org/") == "HUMR"
    assert categories.of("PK", "http://x.example:99999/") is None  # not a URL a list could hold
    # what HTTP leaves implicit, written or not (an OONI input has no path where the list has /)
    assert categories.of("IR", "https://www.hrw.org") == "HUMR"
    assert categories.of("IR", "https://www.hrw.org:443/") == "HUMR"
    assert categories.of("IR", "http://www.hrw.org/") is None  # another scheme, another URL


async def test_ooni_measurements_get_their_category_from_the_lists(
    store_location: str, tmp_path: Path
) -> None:
    """Every OONI measurement's category_code was null, so the category filter and axis found
    nothing (an outside check): OONI's API joins its citizenlab table, the collector fills the
    column from its --test-lists at ingest. A category the measurement names is kept."""
    sent = [
        {**MINIMAL, "input": "https://www.dawn.com/"},
        {**MINIMAL, "input": "https://www.hrw.org/", "measurement_start_time": "2024-05-01 10:00:01"},
        {**MINIMAL, "input": "https://unlisted.example/", "measurement_start_time": "2024-05-01 10:00:02"},
        {
            **MINIMAL,
            "input": "https://www.hrw.org/",
            "measurement_start_time": "2024-05-01 10:00:03",
            "annotations": {"category_code": "ANON"},
        },
    ]
    settings = Settings(store=store_location, rate=0, test_lists=(_lists(tmp_path),))
    async with collector(settings) as (_, http):
        body = b"\n".join(orjson.dumps(m) for m in sent[:3])
        assert (await http.post("/api/v1/measurements", content=body)).status_code == 200
        rid = (
            await http.post(
                "/report",
                json={
                    k: MINIMAL[k]
                    for k in (
                        "probe_asn",
                        "probe_cc",
                        "software_name",
                        "software_version",
                        "test_name",
                        "data_format_version",
                    )
                }
                | {"format": "json"},
            )
        ).json()["report_id"]
        r = await http.post(f"/report/{rid}", json={"format": "json", "content": sent[3]})
        assert r.status_code == 200, r.text
        rows = (await http.get("/api/v1/measurements", params={"order": "asc"})).json()["results"]
        assert [r["category_code"] for r in rows] == ["POLR", "HUMR", None, "ANON"]
        listed = (await http.get("/api/v1/measurements", params={"category_code": "POLR"})).json()
        assert [r["input"] for r in listed["results"]] == ["https://www.dawn.com/"]
        groups = (await http.get("/api/v1/aggregation", params={"axis_x": "category_code"})).json()["result"]
        assert {g.get("category_code"): g["measurement_count"] for g in groups} == {
            "POLR": 1,
            "HUMR": 1,
            None: 1,
            "ANON": 1,
        }


def test_a_list_a_probe_could_not_use_is_refused_where_it_is(tmp_path: Path) -> None:
    """A category no probe could ask for (not letters) and files named for no country (ZZ, OONI's
    unknown one; XX, its name for the global list) were served as they were (an outside check)."""
    (tmp_path / "pk.csv").write_text(HEADER + 'https://a.example/,"NE,WS",News,2017-01-01,,\n')
    with pytest.raises(UserError) as bad:
        UrlLists.load([tmp_path / "pk.csv"])
    assert "pk.csv:2" in str(bad.value.where) and "not a category code" in str(bad.value)
    for name in ("zz.csv", "XX.csv"):
        (tmp_path / name).write_text(HEADER + "https://a.example/,NEWS,News,2017-01-01,,\n")
        with pytest.raises(UserError, match="no country"):
            UrlLists.load([tmp_path / name])
