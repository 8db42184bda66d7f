"""OONI's reads of one measurement: ``GET /api/v1/measurement_meta`` and ``GET /api/v1/raw_measurement``,
by ``measurement_uid`` or by ``report_id`` and ``input``, in OONI's shapes (ooni/backend's
``oonimeasurements`` v1 routes; probe-cli's ``OOAPIMeasurementMeta``), from either store.

As OONI's, a measurement not found is a 200: ``{}`` (``{"raw_measurement": ""}`` with ``full``),
and ``raw_measurement`` answers ``{}``; probe-cli reads such an answer as "not there (yet)", where a
404 would be an error to it. ``GET /api/v1/measurement/{uid}`` (ours) answers 404.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import orjson
from fastapi import FastAPI, Query
from starlette.requests import Request
from starlette.responses import Response

from reachwatch.collector.http import STORE_FAILING, ApiError, json_response, store_errors
from reachwatch.collector.read_params import once
from reachwatch.store import Filters, Store
from reachwatch.store.compression import decompress

PARAMS_META = ("measurement_uid", "report_id", "input", "full")
PARAMS_RAW = ("measurement_uid", "report_id", "input")
#: a report id as OONI's API takes one (15 to 100 letters, digits and ``_``)
REPORT_ID = r"^[A-Za-z0-9_]{15,100}$"
_REPORT_ID = re.compile(REPORT_ID)
#: ``test_start_time`` as probes write it
_PROBE_TIME = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$")
_ANSWERS: dict[int | str, dict[str, Any]] = {
    400: {"description": "neither measurement_uid nor report_id"},
    422: {"description": "a bad parameter"},
    **STORE_FAILING,
}


def _uid() -> Any:
    return Query(None, min_length=3, max_length=128, description="the measurement's uid")


def _report_id() -> Any:
    return Query(
        None,
        min_length=3,
        max_length=100,
        description="the report the measurement belongs to (with input, or alone for a test without input)",
        json_schema_extra={"pattern": REPORT_ID},
    )


def _input() -> Any:
    return Query(
        None, min_length=3, max_length=4096, description="the measurement's input (a URL), with report_id"
    )


def _filters(measurement_uid: str | None, report_id: str | None, input: str | None) -> Filters:
    if measurement_uid is not None:
        return Filters(measurement_uid=measurement_uid)
    if report_id is None:
        raise ApiError(
            400,
            "give measurement_uid, or report_id (with input for a measurement of a URL): neither was given",
        )
    if not _REPORT_ID.match(report_id):
        raise ApiError(
            422, "report_id: not a report id (15 to 100 letters, digits and _, as POST /report answers)"
        )
    if input is None:  # as OONI's: the report's measurement without an input
        return Filters(report_id=report_id, no_input=True)
    return Filters(report_id=report_id, input=input)


async def _find(request: Request, f: Filters) -> tuple[dict[str, Any] | None, bytes | None]:
    """The list row and the stored measurement (decompressed) of the measurement ``f`` names."""
    store: Store = request.app.state.store
    await request.app.state.ingestor.verdicts_for_a_read()
    with store_errors("read"):
        _, rows = await store.search(f, 1, 0)
        if not rows:
            return None, None
        raw = await store.get_raw(rows[0]["measurement_uid"])
    return rows[0], (decompress(raw) if raw is not None else None)


def _utc(text: Any) -> str | None:
    """A probe's ``2024-05-01 10:00:00`` as OONI's API writes times (``2024-05-01T10:00:00Z``)."""
    return f"{text[:10]}T{text[11:]}Z" if isinstance(text, str) and _PROBE_TIME.match(text) else None


def meta_of(row: dict[str, Any], raw: bytes | None, full: bool) -> dict[str, Any]:
    """OONI's ``measurement_meta`` of a stored row (``probe_asn`` a number, ``scores`` a JSON
    string, as OONI's)."""
    start: dt.datetime = row["measurement_start_time"]
    asn = row["probe_asn"]
    out: dict[str, Any] = {
        "input": row["input"],
        "measurement_start_time": f"{start:%Y-%m-%dT%H:%M:%S}Z",
        "measurement_uid": row["measurement_uid"],
        "report_id": row["report_id"],
        "test_name": row["test_name"],
        "probe_asn": int(asn[2:]) if asn[2:].isdigit() else asn,
        "probe_cc": row["probe_cc"],
        "scores": "{}",
        "anomaly": bool(row["anomaly"]),
        "confirmed": bool(row["confirmed"]),
        "failure": bool(row["failure"]),
        "category_code": row["category_code"],
    }
    if raw is not None:
        try:
            test_start = _utc(orjson.loads(raw).get("test_start_time"))
        except (orjson.JSONDecodeError, AttributeError):
            test_start = None
        if test_start is not None:
            out["test_start_time"] = test_start
    if full:
        out["raw_measurement"] = raw.decode() if raw is not None else ""
    return out


def add_routes(app: FastAPI) -> None:
    @app.head("/api/v1/measurement_meta", include_in_schema=False)  # the GET's status and headers
    @app.get("/api/v1/measurement_meta", responses=_ANSWERS)
    async def measurement_meta(
        request: Request,
        measurement_uid: str | None = _uid(),
        report_id: str | None = _report_id(),
        input: str | None = _input(),
        full: bool = Query(False, description="add the measurement itself, as a string (raw_measurement)"),
    ) -> Response:
        """OONI's metadata of one measurement: ``{}`` when there is none (OONI's answer)."""
        once(request, PARAMS_META)
        row, raw = await _find(request, _filters(measurement_uid, report_id, input))
        if row is None:
            return json_response({"raw_measurement": ""} if full else {})
        return json_response(meta_of(row, raw, full))

    @app.head("/api/v1/raw_measurement", include_in_schema=False)  # the GET's status and headers
    @app.get("/api/v1/raw_measurement", responses=_ANSWERS)
    async def raw_measurement(
        request: Request,
        measurement_uid: str | None = _uid(),
        report_id: str | None = _report_id(),
        input: str | None = _input(),
    ) -> Response:
        """The measurement as stored (scrubbed, attributed): ``{}`` when there is none (OONI's answer)."""
        once(request, PARAMS_RAW)
        _, raw = await _find(request, _filters(measurement_uid, report_id, input))
        return Response(raw if raw is not None else b"{}", media_type="application/json")
