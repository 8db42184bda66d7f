"""Read routes: one stored measurement, the OONI-like measurement list, the aggregation API."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import time
from typing import Any, Literal, get_args

from fastapi import FastAPI, Query
from starlette.requests import Request
from starlette.responses import Response

from reachwatch.collector.http import STORE_FAILING, ApiError, json_response, store_errors
from reachwatch.collector.ooni_protocol import ASN_DIGITS_EXACT, ASN_MAX, exact_days
from reachwatch.observations.text import norm_host
from reachwatch.report.tables import Table
from reachwatch.store import Filters, ListOrder, Store
from reachwatch.store.compression import decompress
from reachwatch.store.query import COUNTS, ORDER_BY

Axis = Literal["measurement_start_day", "probe_cc", "probe_asn", "domain", "category_code"]
OrderBy = Literal["measurement_start_time", "input", "probe_cc", "probe_asn", "test_name"]
#: filters as people type them (OONI's API takes ``AS123`` or ``123``): normalised by :func:`_filters`
CC_QUERY = r"^[A-Za-z]{2}$"
ASN_QUERY = r"^(?:[Aa][Ss])?[0-9]{1,10}$"
#: ASN_QUERY as OpenAPI tells clients: exactly the ASNs taken (to ASN_MAX, leading zeros allowed)
ASN_QUERY_EXACT = rf"^(?:[Aa][Ss])?{ASN_DIGITS_EXACT}$"
#: a time of day and UTC offset after a date, optional
_TIME = r"([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?)?$"
#: months, days, hours, minutes in range: what is validated (Feb 30 is then a 422 of its own)
DATE = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])" + _TIME
#: DATE as OpenAPI tells clients: the calendar's days, years 1 to 9999 (Python's), so that a
#: fuzzer's valid dates are taken
DATE_EXACT = (
    "^"
    + exact_days(
        r"[0-9]{3}[1-9]|[0-9]{2}[1-9]0|[0-9][1-9]00|[1-9]000",
        r"[0-9]{2}(0[48]|[2468][048]|[13579][26])|(0[48]|[2468][048]|[13579][26])00",
    )
    + _TIME
)
UID = r"^[0-9]{14}\.[0-9]{6}_[A-Z]{2}_[a-z]{1,64}_[0-9a-f]{16}$"
FILTERS = (
    "probe_cc", "probe_asn", "domain", "input", "category_code", "test_name", "since", "until", "attributed",
)  # fmt: skip
#: OONI's test names as stored (``web_connectivity``), as ``MeasurementIn`` takes them
TEST_NAME = r"^[a-z_]{1,64}$"
#: OONI's list parameters taken besides the filters both routes share
LIST_ONLY = (
    "blocking",
    "report_id",
    "anomaly",
    "confirmed",
    "failure",
    "order_by",
    "order",
    "limit",
    "offset",
)
LIST_PARAMS = (*FILTERS, *LIST_ONLY)
AGGREGATION_PARAMS = ("axis_x", "axis_y", "time_grain", "format", "download", *FILTERS)
TimeGrain = Literal["hour", "day", "week", "month", "year", "auto"]
#: the longest ``since``..``until`` counted by the hour (OONI's API's limit: a year of hours per
#: country would be a response of millions of rows)
HOURLY_DAYS = 7
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "no such measurement"}, **STORE_FAILING}


def _attributed() -> Any:
    """The ``attributed`` filter (ours, not OONI's), one for each route that takes it."""
    return Query(
        None,
        description=(
            "true: only the measurements whose submitter the collector placed on a network (its "
            "ASN and country databases); false: only the others, counted under the network the "
            "probe claimed (not OONI's)"
        ),
    )


def _when(value: str | None, name: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(422, f"{name}: not a date or date-time") from None
    if parsed.tzinfo is not None:
        try:
            parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
        except OverflowError:  # 0001-01-01T00:00+01:00 is before year 1 in UTC
            raise ApiError(422, f"{name}: out of range once converted to UTC") from None
    return parsed


def _asn(value: str | None) -> str | None:
    """``AS123``, ``as123``, ``123``, ``AS0123`` and ``0123`` are one network, stored as ``AS123``
    (``ooni_protocol.canonical_asn``); past ASN_MAX (32 bits) no network is, so it is a 422."""
    if value is None:
        return None
    number = int(value[2:] if value[:2].upper() == "AS" else value)
    if number > ASN_MAX:
        raise ApiError(
            422,
            f"probe_asn: {value} is past {ASN_MAX}, the largest ASN (they are 32-bit numbers): "
            "give the network's ASN, as AS123 or 123",
        )
    return f"AS{number}"


#: ``blocking=`` values: an anomaly, none, no verdict, or one of the verdict's blocking types
BLOCKING = ("true", "false", "null", "dns", "tcp_ip", "http-failure", "http-diff")
#: the white space around a ``blocking`` value that is ignored (ASCII: str.strip() would also drop
#: control characters no pattern in the spec could say)
_BLANKS = " \t\n\r\v\f"


#: BLOCKING as OpenAPI tells clients: a value in any case, blanks around it
def _any_case(word: str) -> str:
    """A regex of ``word`` in any case (ASCII letters)."""
    return "".join(f"[{c.upper()}{c}]" if c.isalpha() else re.escape(c) for c in word)


BLOCKING_EXACT = r"^[ \t\n\r\v\f]*(" + "|".join(_any_case(v) for v in BLOCKING) + r")[ \t\n\r\v\f]*$"
#: ``time_grain`` and ``format`` in any case, as OONI's API takes them
GRAIN_ANY_CASE = "^(" + "|".join(_any_case(g) for g in get_args(TimeGrain)) + ")$"
FORMAT_ANY_CASE = f"^({_any_case('json')}|{_any_case('csv')})$"


def _blocking(value: str | None) -> str | None:
    """A known ``blocking`` value in any case; anything else would match nothing, silently."""
    if value is None:
        return None
    known = value.strip(_BLANKS).lower()
    if known not in BLOCKING:
        raise ApiError(422, f"blocking: {value[:32]!r} is not one of {', '.join(BLOCKING)}")
    return known


def once(request: Request, names: tuple[str, ...]) -> None:
    """Each parameter one of ``names``, given at most once: a misspelt or unsupported filter
    (``cc=PK``, OONI's ``anomaly=true``) would silently widen the answer to every measurement, and a
    parameter given twice would silently take its last value; both are refused instead."""
    for name in request.query_params:
        if name not in names:
            raise ApiError(422, f"unknown query parameter {name[:64]!r}: this route takes {', '.join(names)}")
    for name in names:
        if len(request.query_params.getlist(name)) > 1:
            raise ApiError(422, f"{name}: given more than once")


#: what no host name holds: a list's comma, spaces, a URL's separators
_NOT_IN_HOST = re.compile(r"[\s,/?#@]")


def _filters(
    probe_cc: str | None,
    probe_asn: str | None,
    domain: str | None,
    input: str | None,
    category_code: str | None,
    test_name: str | None,
    since: str | None,
    until: str | None,
    blocking: str | None,
) -> Filters:
    # the form the collector stores (lower case, no final dot, punycode): analysis.domain
    host = norm_host(domain) if domain is not None else None
    for name, value in (("domain", host), ("input", input), ("category_code", category_code)):
        if value is not None and not value.strip():
            # it used to match only the rows with an empty column (measurements without a URL),
            # which nobody means by it; ``domain=...`` is empty once its final dots are dropped
            raise ApiError(422, f"{name}: empty; leave the parameter out to match every {name}")
    if domain is not None and host is not None and _NOT_IN_HOST.search(host):
        # OONI's API reads a comma as a list; here it matched nothing, which looked like "never measured"
        raise ApiError(
            422,
            f"domain: {domain[:64]!r} is not one host name: give one per request, or group by "
            "domain in /api/v1/aggregation (axis_x=domain)",
        )
    start, end = _when(since, "since"), _when(until, "until")
    if start is not None and end is not None and start >= end:
        # an empty answer would look like "nothing measured then"
        raise ApiError(422, "since must be before until (since is included, until is not): swap them")
    return Filters(
        probe_cc=probe_cc.upper() if probe_cc is not None else None,
        probe_asn=_asn(probe_asn),
        domain=host,
        input=input,
        category_code=category_code,
        test_name=test_name,
        since=start,
        until=end,
        blocking=_blocking(blocking),
    )


def _grain(time_grain: str | None, f: Filters) -> str:
    """The period the time axis counts by (``query.GRAINS``): a day unless asked otherwise; OONI's
    ``auto`` is the hour over at most :data:`HOURLY_DAYS` days, else the day."""
    if time_grain is None:
        return "day"
    short = (
        f.since is not None and f.until is not None and f.until - f.since <= dt.timedelta(days=HOURLY_DAYS)
    )
    if time_grain == "auto":
        return "hour" if short else "day"
    if time_grain == "hour" and not short:
        raise ApiError(
            422,
            f"time_grain=hour needs since and until at most {HOURLY_DAYS} days apart (as OONI's API): "
            "narrow them, or count by day",
        )
    return time_grain


def _aggregation_csv(rows: list[dict[str, Any]], axes: list[str]) -> str:
    """The aggregation as CSV: the axes, then the counts, one row per group (a cell that a
    spreadsheet would read as a formula is quoted, as in the report's tables)."""
    columns = (*axes, *COUNTS)
    return Table("aggregation", "Aggregation", columns, tuple(rows)).to_csv()


def result_row(r: dict[str, Any], base: str = "") -> dict[str, Any]:
    """An OONI list row (anomaly, confirmed, failure, scores, measurement_url...) plus our columns;
    ``base``: the collector's URL as the client reached it (OONI's URLs are absolute)."""
    start: dt.datetime = r["measurement_start_time"]
    out = {k: v for k, v in r.items() if k not in ("measurement_start_time", "measurement_start_day")}
    out["measurement_start_time"] = f"{start:%Y-%m-%dT%H:%M:%S}Z"
    out["measurement_url"] = f"{base}/api/v1/measurement/{r['measurement_uid']}"
    out["scores"] = {}
    return out


def add_routes(app: FastAPI) -> None:
    @app.head(
        "/api/v1/measurement/{measurement_uid}", include_in_schema=False
    )  # the GET's status and headers (as OONI's API)
    @app.get("/api/v1/measurement/{measurement_uid}", responses=NOT_FOUND)
    async def get_measurement(request: Request, measurement_uid: str) -> Response:
        store: Store = request.app.state.store
        with store_errors("read"):
            raw = await store.get_raw(measurement_uid) if len(measurement_uid) < 128 else None
        if raw is None:
            raise ApiError(404, "no such measurement")
        return Response(decompress(raw), media_type="application/json")

    @app.head("/api/v1/measurements", include_in_schema=False)  # the GET's status and headers (as OONI's API)
    @app.get("/api/v1/measurements", responses=STORE_FAILING)
    async def list_measurements(
        request: Request,
        probe_cc: str | None = Query(None, pattern=CC_QUERY),
        probe_asn: str | None = Query(
            None, pattern=ASN_QUERY, json_schema_extra={"pattern": ASN_QUERY_EXACT}
        ),
        domain: str | None = Query(None, max_length=255),
        input: str | None = Query(None, max_length=4096),
        category_code: str | None = Query(None, max_length=16),
        test_name: str | None = Query(None, pattern=TEST_NAME),
        since: str | None = Query(None, pattern=DATE, json_schema_extra={"pattern": DATE_EXACT}),
        until: str | None = Query(None, pattern=DATE, json_schema_extra={"pattern": DATE_EXACT}),
        attributed: bool | None = _attributed(),
        blocking: str | None = Query(
            None,
            max_length=32,
            description=f"one of {', '.join(BLOCKING)} (true: any anomaly), in any case",
            json_schema_extra={"pattern": BLOCKING_EXACT},
        ),
        report_id: str | None = Query(None, min_length=1, max_length=256),
        anomaly: bool | None = Query(None, description="blocking found (OONI's anomaly)"),
        confirmed: bool | None = Query(None, description="blocking confirmed by a known fingerprint"),
        failure: bool | None = Query(None, description="no verdict could be made"),
        order_by: OrderBy = Query("measurement_start_time", description="then by measurement_uid"),
        order: str = Query(
            "desc", pattern=r"^([Aa][Ss][Cc]|[Dd][Ee][Ss][Cc])$", description="asc or desc, in any case"
        ),
        limit: int = Query(100, ge=1, le=1000),
        offset: int = Query(0, ge=0, le=1_000_000),
    ) -> Response:
        t0 = time.perf_counter()
        once(request, LIST_PARAMS)
        f = _filters(probe_cc, probe_asn, domain, input, category_code, test_name, since, until, blocking)
        f = dataclasses.replace(
            f,
            report_id=report_id,
            anomaly=anomaly,
            confirmed=confirmed,
            failure=failure,
            attributed=attributed,
        )
        store: Store = request.app.state.store
        await request.app.state.ingestor.verdicts_for_a_read()
        with store_errors("read"):
            count, rows = await store.search(f, limit, offset, ListOrder(order_by, order.lower() == "desc"))
        pages = (count + limit - 1) // limit
        # absolute, as OONI's: scheme and host as the client reached the collector (behind a trusted
        # proxy, its X-Forwarded-Proto: collector.forwarded)
        nxt = None
        if offset + limit < count:
            nxt = str(request.url.include_query_params(offset=offset + limit, limit=limit))
        base = str(request.base_url).rstrip("/")
        metadata = {
            "count": count,
            "current_page": offset // limit + 1,
            "limit": limit,
            "offset": offset,
            "pages": pages,
            "next_url": nxt,
            "query_time": round(time.perf_counter() - t0, 4),
        }
        return json_response({"metadata": metadata, "results": [result_row(r, base) for r in rows]})

    @app.head("/api/v1/aggregation", include_in_schema=False)  # the GET's status and headers (as OONI's API)
    @app.get("/api/v1/aggregation", responses=STORE_FAILING)
    async def aggregation(
        request: Request,
        axis_x: Axis | None = None,
        axis_y: Axis | None = None,
        probe_cc: str | None = Query(None, pattern=CC_QUERY),
        probe_asn: str | None = Query(
            None, pattern=ASN_QUERY, json_schema_extra={"pattern": ASN_QUERY_EXACT}
        ),
        domain: str | None = Query(None, max_length=255),
        input: str | None = Query(None, max_length=4096),
        category_code: str | None = Query(None, max_length=16),
        test_name: str | None = Query(None, pattern=TEST_NAME),
        since: str | None = Query(None, pattern=DATE, json_schema_extra={"pattern": DATE_EXACT}),
        until: str | None = Query(None, pattern=DATE, json_schema_extra={"pattern": DATE_EXACT}),
        attributed: bool | None = _attributed(),
        time_grain: str | None = Query(
            None,
            pattern=GRAIN_ANY_CASE,
            description=(
                "the period measurement_start_day counts by (default: day; weeks start on Sunday, "
                f"as OONI's); hour needs since and until at most {HOURLY_DAYS} days apart; auto: "
                f"hour then, else day; one of {', '.join(get_args(TimeGrain))}, in any case"
            ),
        ),
        format: str = Query("JSON", pattern=FORMAT_ANY_CASE, description="JSON or CSV, in any case"),
        download: bool = Query(False, description="answer as a file to save (Content-Disposition)"),
    ) -> Response:
        t0 = time.perf_counter()
        once(request, AGGREGATION_PARAMS)
        axes: list[str] = [a for a in (axis_x, axis_y) if a is not None]
        if len(axes) == 2 and axes[0] == axes[1]:
            raise ApiError(422, "axis_x and axis_y must differ")
        f = _filters(probe_cc, probe_asn, domain, input, category_code, test_name, since, until, None)
        f = dataclasses.replace(f, attributed=attributed)
        grain = _grain(time_grain.lower() if time_grain is not None else None, f)
        store: Store = request.app.state.store
        await request.app.state.ingestor.verdicts_for_a_read()
        with store_errors("read"):
            rows = await store.aggregate(f, axes, grain)
        for r in rows:
            for k, v in r.items():
                if isinstance(v, dt.datetime):  # an hour, written as OONI's API writes it
                    r[k] = f"{v:%Y-%m-%dT%H:%M:%S}Z"
                elif isinstance(v, dt.date):
                    r[k] = v.isoformat()
                elif k == "probe_asn" and isinstance(v, str) and v[2:].isdigit():
                    r[k] = int(v[2:])  # OONI's aggregation answers the number (its column is UInt32)
                elif k.endswith("_count"):
                    r[k] = int(v or 0)
        csv = format.upper() == "CSV"
        headers = {"Content-Disposition": f"attachment; filename=reachwatch-aggregation.{format.lower()}"}
        if csv:
            return Response(
                _aggregation_csv(rows, axes),
                media_type="text/csv; charset=utf-8",
                headers=headers if download else None,
            )
        result: Any = rows if axes else (rows[0] if rows else {})
        return json_response(
            {
                "v": 0,
                "dimension_count": len(axes),
                "result": result,
                "db_stats": {"query_time": round(time.perf_counter() - t0, 4)},
            },
            headers=headers if download else None,
        )


if get_args(OrderBy) != ORDER_BY:
    raise ImportError("reads.OrderBy and store.query.ORDER_BY differ: make them one list")
