"""Read routes: one stored measurement, the OONI-like measurement list, the aggregation API."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from typing import Annotated, Any, get_args

from fastapi import FastAPI, Query
from starlette.requests import Request
from starlette.responses import Response

from reachwatch.collector.http import STORE_FAILING, ApiError, json_response, store_errors
from reachwatch.collector.read_params import (
    AGGREGATION_PARAMS,
    AXIS_HELP,
    BLOCKING,
    BLOCKING_EXACT,
    FORMAT_ANY_CASE,
    GRAIN_ANY_CASE,
    HOURLY_DAYS,
    LIST_PARAMS,
    LIST_ROWS,
    NOT_FOUND,
    AsnFilter,
    AttributedFilter,
    CategoryFilter,
    CcFilter,
    DomainFilter,
    Flag,
    InputFilter,
    OrderBy,
    SinceFilter,
    TestNameFilter,
    TimeGrain,
    UntilFilter,
    axis_of,
    filters_of,
    given,
    grain_of,
    once,
)
from reachwatch.report.tables import Table
from reachwatch.store import ListOrder, Store
from reachwatch.store.compression import decompress
from reachwatch.store.query import AXES, COUNTS, ORDER_BY


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
        probe_cc: CcFilter = None,
        probe_asn: AsnFilter = None,
        domain: DomainFilter = None,
        input: InputFilter = None,
        category_code: CategoryFilter = None,
        test_name: TestNameFilter = None,
        since: Annotated[
            SinceFilter,
            Query(description="the measurements after it (OONI's list; a date alone: its first instant)"),
        ] = None,
        until: Annotated[
            UntilFilter,
            Query(
                description="the measurements up to it, it included (OONI's list; a date alone: its first instant)"
            ),
        ] = None,
        attributed: AttributedFilter = None,
        blocking: str | None = Query(
            None,
            max_length=32,
            description=f"one of {', '.join(BLOCKING)} (true: any anomaly), in any case; empty: left out",
            json_schema_extra={"pattern": BLOCKING_EXACT},
        ),
        report_id: str | None = Query(None, max_length=256, description="empty: left out"),
        anomaly: Annotated[Flag, Query(description="blocking found (OONI's anomaly)")] = None,
        confirmed: Annotated[Flag, Query(description="blocking confirmed by a known fingerprint")] = None,
        failure: Annotated[Flag, Query(description="no verdict could be made")] = None,
        order_by: OrderBy = Query("measurement_start_time", description="then by measurement_uid"),
        order: str = Query(
            "desc", pattern=r"^([Aa][Ss][Cc]|[Dd][Ee][Ss][Cc])$", description="asc or desc, in any case"
        ),
        limit: int = Query(
            100,
            ge=0,
            description=(
                f"rows a page, at most {LIST_ROWS} (OONI's API: 1,000,000); 0: only the count; "
                "page through more with next_url"
            ),
            json_schema_extra={"maximum": LIST_ROWS},
        ),
        offset: int = Query(0, ge=0, le=1_000_000),
    ) -> Response:
        t0 = time.perf_counter()
        once(request, LIST_PARAMS)
        if limit > LIST_ROWS:
            raise ApiError(
                422,
                f"limit: at most {LIST_ROWS} rows a page (each page is read into memory): page "
                "through more with metadata.next_url (offset and limit)",
            )
        f = filters_of(
            probe_cc, probe_asn, domain, input, category_code, test_name, since, until, blocking, True
        )
        f = dataclasses.replace(
            f,
            report_id=given(report_id),
            anomaly=anomaly,
            confirmed=confirmed,
            failure=failure,
            attributed=attributed,
        )
        store: Store = request.app.state.store
        await request.app.state.ingestor.verdicts_for_a_read()
        with store_errors("read"):
            count, rows = await store.search(f, limit, offset, ListOrder(order_by, order.lower() == "desc"))
        # limit=0 asks for the count alone: no pages, and no next one
        pages = (count + limit - 1) // limit if limit else 0
        # absolute, as OONI's: scheme and host as the client reached the collector (behind a trusted
        # proxy, its X-Forwarded-Proto: collector.forwarded)
        nxt = None
        if limit and offset + limit < count:
            nxt = str(request.url.include_query_params(offset=offset + limit, limit=limit))
        base = str(request.base_url).rstrip("/")
        metadata = {
            "count": count,
            "current_page": offset // limit + 1 if limit else 0,
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
        axis_x: str | None = Query(None, description=AXIS_HELP, json_schema_extra={"enum": list(AXES)}),
        axis_y: str | None = Query(None, description=AXIS_HELP, json_schema_extra={"enum": list(AXES)}),
        probe_cc: CcFilter = None,
        probe_asn: AsnFilter = None,
        domain: DomainFilter = None,
        input: InputFilter = None,
        category_code: CategoryFilter = None,
        test_name: TestNameFilter = None,
        since: Annotated[
            SinceFilter,
            Query(
                description="the measurements from it, it included (OONI's aggregation; a date alone: its first instant)"
            ),
        ] = None,
        until: Annotated[
            UntilFilter,
            Query(
                description="the measurements before it (OONI's aggregation; a date alone: its first instant)"
            ),
        ] = None,
        attributed: AttributedFilter = None,
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
        # an empty axis is left out, as OONI's
        asked = (("axis_x", given(axis_x)), ("axis_y", given(axis_y)))
        axes = [axis_of(name, value) for name, value in asked if value is not None]
        if len(axes) == 2 and axes[0] == axes[1]:
            raise ApiError(422, "axis_x and axis_y must differ")
        f = filters_of(probe_cc, probe_asn, domain, input, category_code, test_name, since, until, None)
        f = dataclasses.replace(f, attributed=attributed)
        grain = grain_of(time_grain.lower() if time_grain is not None else None, f)
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
        # as OONI's (its response model drops None): a group without a value (no category, no
        # input) has no key for that axis, rather than a null
        rows = [{k: v for k, v in r.items() if v is not None} for r in rows]
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
