"""How the outbox reads a collector's answers."""

from __future__ import annotations

import httpx

from reachwatch.collector.answers import batch_line_reason, reason_of, retry_after


def test_a_refused_line_is_told_apart_from_the_lines_of_the_users_file() -> None:
    assert (
        batch_line_reason(422, 3, 500, "line 3: no test_name")
        == "422: no test_name (line 3 of 500 sent together)"
    )
    # another collector's wording is kept whole
    assert batch_line_reason(400, 3, 9, "bad line") == "400: bad line (line 3 of 9 sent together)"


def test_retry_after_is_kept_within_bounds() -> None:
    assert retry_after(httpx.Response(503, headers={"retry-after": "2.5"})) == 2.5
    assert retry_after(httpx.Response(503, headers={"retry-after": "3600"})) == 60.0
    assert retry_after(httpx.Response(503, headers={"retry-after": "0"})) == 0.05
    assert retry_after(httpx.Response(503, headers={"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"})) == 1.0


def test_reasons_are_one_line() -> None:
    assert reason_of(httpx.Response(422, json={"error": "x" * 400})) == "x" * 300
    assert reason_of(httpx.Response(403, text="Forbidden by proxy")) == "Forbidden by proxy"
    page = httpx.Response(502, html="<html>\n<h1>Bad gateway</h1>\n</html>")
    assert reason_of(page).startswith("Bad Gateway (not a reachwatch collector's answer")
