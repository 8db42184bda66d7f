"""A group of single posts in one worker call: the refused ones named with their answers, the
others' rows in order."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest

from collector.conftest import MINIMAL
from collector.test_app import OPEN
from reachwatch.collector.http import ApiError
from reachwatch.collector.ooni_protocol import ReportOpen, new_report_id
from reachwatch.collector.post_rows import answer_of, post_rows
from reachwatch.collector.submissions import REPORT, SUBMISSION, unwrap
from reachwatch.store.compression import decompress
from reachwatch.store.schema import IDENTITY, RowColumns

SECRET = b"k" * 32


def test_refused_posts_are_named_and_the_others_rows_kept_in_order() -> None:
    rid = "20241129T000000Z_webconnectivity_PK_64501_n1_abc"
    good = [
        orjson.dumps({"format": "json", "content": {**MINIMAL, "input": f"https://{i}.example/"}})
        for i in range(3)
    ]
    bodies = [good[0], b'{"format": "json"', good[1], b'{"format": "json", "content": {}}', good[2], good[0]]
    kinds = [(REPORT, rid)] * 5 + [("nonsense", None)]
    items, start = [], 0
    for kind, body in zip(kinds, bodies, strict=True):
        items.append((kind, start, start + len(body), "203.0.113.9", None, "AS64501", "Net", "PK"))
        start += len(body)
    refused, rows = post_rows(b"".join(bodies), items, secret=SECRET, verdict_now=False, identity=IDENTITY)
    assert [(i, status) for i, status, _, _ in refused] == [(1, 400), (3, 422), (5, 500)]
    assert "request body is not valid JSON" in refused[0][2]
    assert refused[2][2] == "ValueError"  # a bug's type, never what the post held
    table = RowColumns.from_ipc(rows)
    stored = [orjson.loads(decompress(r)) for r in table.table.column("raw").to_pylist()]
    assert [m["input"] for m in stored] == [f"https://{i}.example/" for i in range(3)]
    assert {m["report_id"] for m in stored} == {rid} and {m["probe_asn"] for m in stored} == {"AS64501"}


def test_no_rows_when_every_post_is_refused() -> None:
    refused, rows = post_rows(
        b"[]",
        [((SUBMISSION, None), 0, 2, "", None, None, None, None)],
        secret=SECRET,
        verdict_now=False,
        identity=IDENTITY,
    )
    assert rows == b"" and [r[:2] for r in refused] == [(0, 422)]


def test_answers_of_refused_posts() -> None:
    refusal = answer_of((0, 429, "slow down", {"Retry-After": "3"}))
    assert isinstance(refusal, ApiError) and refusal.status == 429 and refusal.headers == {"Retry-After": "3"}
    assert isinstance(answer_of((0, 500, "KeyError", {})), RuntimeError)


def test_a_submission_names_a_report_this_collector_opened() -> None:
    """The report id of ``submit_measurement`` is checked against the collector's secret in the worker too."""
    opened = new_report_id(SECRET, ReportOpen.model_validate(OPEN), dt.datetime.now(dt.UTC))
    m = {**MINIMAL, "report_id": opened}
    content, rid = unwrap(
        (SUBMISSION, None), orjson.dumps({"format": "json", "content": m}), IDENTITY, SECRET
    )
    assert rid == opened and content["report_id"] == opened
    with pytest.raises(ApiError, match="not opened by this collector"):
        unwrap((SUBMISSION, None), orjson.dumps({"format": "json", "content": m}), IDENTITY, b"other" * 8)
