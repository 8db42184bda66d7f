"""A single post's body to its measurement and report id, for the two routes that take one
measurement alone: OONI's collector (``POST /report/{report_id}``, the report id in the path) and
its probe services (``POST /api/v1/submit_measurement``, the report id in the measurement).

Plain functions of the body, the store's identity and the collector's secret (every 4xx raised
here), so that a batch worker process unwraps a post as the request's process would
(:mod:`reachwatch.collector.post_rows`).
"""

from __future__ import annotations

from typing import Any

from reachwatch.collector import measurement_json
from reachwatch.collector.http import ApiError, parse_json
from reachwatch.collector.ooni_protocol import valid_report_id

#: How a post's body holds its measurement: ``(REPORT, report_id)`` for ``POST /report/{report_id}``
#: (the id checked by the route), ``(SUBMISSION, None)`` for ``submit_measurement``
REPORT = "report"
SUBMISSION = "submission"
Kind = tuple[str, str | None]


def report_content(raw: bytes, identity: str, report_id: str) -> tuple[Any, str]:
    """``{"format": "json", "content": <measurement>}``: the content as a batch line's
    (:mod:`~reachwatch.collector.measurement_json`), the same identity form either way."""
    data = parse_json(raw, parse=measurement_json.submission_loader(identity))
    if not isinstance(data, dict) or data.get("format") != "json" or "content" not in data:
        raise ApiError(422, 'expected {"format": "json", "content": <measurement>}')
    return data["content"], report_id


def submission_content(raw: bytes, identity: str, secret: bytes) -> tuple[Any, str]:
    """The measurement of a ``submit_measurement`` body (an object, or a string holding one) and its
    own report id, which must be one this collector opened (``POST /report``) or handed out
    (check-in): 422 otherwise."""
    data = parse_json(raw, parse=measurement_json.submission_loader(identity))
    if not isinstance(data, dict) or data.get("format") != "json" or "content" not in data:
        raise ApiError(422, 'expected {"format": "json", "content": "<the measurement as a JSON string>"}')
    content = data["content"]
    if isinstance(content, str):
        try:
            text = content.encode()
        except UnicodeEncodeError:
            raise ApiError(
                400, "content: holds a lone surrogate (\\ud800...): not valid UTF-8 text"
            ) from None
        content = parse_json(text, what="content", parse=measurement_json.line_loader(identity))
    if not isinstance(content, dict):
        raise ApiError(422, "content: a measurement must be a JSON object, or a string holding one")
    report_id = content.get("report_id")
    if not isinstance(report_id, str) or not report_id:
        raise ApiError(
            422,
            "content: the measurement has no report_id: put in it the report_id of POST /report, or "
            "the one POST /api/v1/check-in answers for its test",
        )
    if not valid_report_id(secret, report_id):
        raise ApiError(
            422,
            f"content: report_id {report_id[:80]!r} was not opened by this collector: open a report "
            "with POST /report (or check in with POST /api/v1/check-in) and use its report_id",
        )
    return content, report_id


def unwrap(kind: Kind, raw: bytes, identity: str, secret: bytes) -> tuple[Any, str]:
    """The measurement in ``raw`` and its report id, as ``kind`` says the body holds them."""
    name, report_id = kind
    if name == REPORT and report_id is not None:
        return report_content(raw, identity, report_id)
    if name == SUBMISSION:
        return submission_content(raw, identity, secret)
    raise ValueError(f"not a kind of post: {kind!r}")
