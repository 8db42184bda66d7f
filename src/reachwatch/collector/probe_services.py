"""OONI's probe-services routes, so that a real OONI probe (ooniprobe, miniooni) given this collector
as ``--probe-services`` can select it, check in and submit: ``GET /api/v1/test-helpers``,
``POST /api/v1/check-in``, ``GET /api/v1/test-list/urls``, ``POST /api/v1/submit_measurement``
(and, from :mod:`~reachwatch.collector.ooni_reads`, ``measurement_meta`` and ``raw_measurement``).

Shapes as ooni/probe-cli reads them (``internal/model/ooapi.go``, ``internal/probeservices``) and
ooni/backend answers them. A submission goes down the ingest path of ``POST /report/{id}``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import FastAPI, Query
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from reachwatch.collector import ooni_reads
from reachwatch.collector.config import Settings
from reachwatch.collector.http import ApiError, json_response, parse_json, read_body
from reachwatch.collector.ingest import Ingestor
from reachwatch.collector.ooni_protocol import (
    TEXT,
    Asn,
    Submitted,
    canonical_asn,
    report_id_for,
)
from reachwatch.collector.openapi import error_answers, json_body
from reachwatch.collector.prepare import validation_message
from reachwatch.collector.read_params import CC_QUERY, once
from reachwatch.collector.submissions import SUBMISSION, Kind
from reachwatch.collector.submitter import submitter_of
from reachwatch.collector.url_lists import CATEGORY, UrlLists

#: what OONI's check-in hands out a report id for (ooni/backend's list): a probe running any of
#: them after a check-in submits with that id
CHECK_IN_TESTS = (
    "bridge_reachability", "dash", "dns_consistency", "dnscheck", "facebook_messenger",
    "http_header_field_manipulation", "http_host", "http_invalid_request_line", "http_requests",
    "meek_fronted_requests_test", "multi_protocol_traceroute", "ndt", "psiphon", "riseupvpn",
    "tcp_connect", "telegram", "tor", "urlgetter", "vanilla_tor", "web_connectivity", "whatsapp",
)  # fmt: skip
#: URLs a check-in answers, as OONI's: the whole list for a manual run, fewer for a timed one
MANUAL_URLS, CHARGING_URLS, ON_BATTERY_URLS = 9999, 100, 20
#: codes comma-separated, spaces and empty items allowed (OpenAPI says what a 422 would refuse)
CATEGORY_LIST = r"^[ \t]*(?:[A-Za-z]{1,16}[ \t]*)?(?:,[ \t]*(?:[A-Za-z]{1,16}[ \t]*)?)*$"
CATEGORIES_MAX = 64

Ingest = Callable[[Scope, bytes, Kind], Awaitable[bytes]]
RateLimit = Callable[[str, "str | None", int], None]

_4XX = error_answers(
    (400, "bad JSON"),
    (413, "body too large"),
    (415, "a Content-Encoding other than zstd, gzip, deflate"),
    (422, "invalid request"),
    (429, "rate limited"),
    (503, "busy, retry"),
)


class CheckInWebConnectivity(BaseModel):
    model_config = ConfigDict(extra="ignore")
    #: probe-cli sends a list (``null`` when empty); OONI's API also takes a comma-separated string
    category_codes: (
        Annotated[list[Annotated[str, Field(pattern=CATEGORY)]], Field(max_length=CATEGORIES_MAX)]
        | Annotated[str, Field(max_length=1024, pattern=CATEGORY_LIST)]
        | None
    ) = None


class CheckIn(BaseModel):
    """probe-cli's ``OOAPICheckInConfig``; OONI's defaults for what a probe leaves out."""

    model_config = ConfigDict(extra="ignore")
    charging: StrictBool = True
    on_wifi: StrictBool = False
    platform: str = Field("", pattern=r"^[^\x00-\x1f\x7f]*$", max_length=64)
    probe_asn: Asn = "AS0"
    probe_cc: str = Field("ZZ", pattern=r"^[A-Za-z]{2}$")
    run_type: str = Field("timed", pattern=TEXT, max_length=32)
    software_name: str = Field("", pattern=r"^[^\x00-\x1f\x7f]*$", max_length=128)
    software_version: str = Field("", pattern=r"^[^\x00-\x1f\x7f]*$", max_length=128)
    web_connectivity: CheckInWebConnectivity | None = None


class UrlInfo(BaseModel):
    category_code: str
    country_code: str
    url: str


class CheckInAnswer(BaseModel):
    """OONI's check-in answer: ``tests`` holds a report id for each of :data:`CHECK_IN_TESTS`,
    and ``web_connectivity`` the URLs too."""

    v: int
    probe_cc: str
    probe_asn: str
    probe_network_name: str | None
    utc_time: str
    conf: dict[str, Any]
    tests: dict[str, Any]


class SubmitMeasurement(BaseModel):
    """probe-cli's ``OOAPISubmitMeasurementRequest``: the measurement as a JSON string (an object
    is taken too)."""

    format: str = Field(pattern="^json$")
    content: Annotated[str, Field(min_length=2)] | Annotated[dict[str, Any], Field(min_length=1)]


def test_helpers(url: str | None) -> dict[str, list[dict[str, str]]]:
    """OONI's test-helpers map: this collector's control helper as the ``web-connectivity`` one, or
    none (``{}``: probe-cli takes it, and its web_connectivity then has no control to ask)."""
    if url is None:
        return {}
    return {"web-connectivity": [{"address": url, "type": "https"}]}


def _categories(value: list[str] | str | None) -> frozenset[str]:
    """Category codes in upper case, as the lists hold them (a string: comma-separated)."""
    if value is None:
        return frozenset()
    codes = value.split(",") if isinstance(value, str) else value
    out = frozenset(c.strip().upper() for c in codes if c.strip())
    bad = next((c for c in out if not re.fullmatch(CATEGORY, c)), None)
    if bad is not None:
        raise ApiError(
            422,
            f"category_codes: {bad[:32]!r} is not a category code: give Citizen Lab codes "
            "(letters, as NEWS or HUMR), comma-separated",
        )
    if len(out) > CATEGORIES_MAX:
        raise ApiError(422, f"category_codes: more than {CATEGORIES_MAX} codes")
    return out


def add_routes(app: FastAPI, settings: Settings, ingest: Ingest, rate_limit: RateLimit) -> None:
    lists = app.state.url_lists = UrlLists.load(settings.test_lists) if settings.test_lists else UrlLists()
    helpers = test_helpers(settings.test_helper)

    @app.get("/api/v1/test-helpers", responses={422: _4XX[422]})
    async def get_test_helpers(request: Request) -> Response:
        """OONI's test helpers by name (probe-cli selects a backend by this route's answer)."""
        once(request, ())
        return json_response(helpers)

    @app.post(
        "/api/v1/check-in", response_model=CheckInAnswer, responses=_4XX, openapi_extra=json_body(CheckIn)
    )
    async def check_in(request: Request) -> Response:
        """What to test: a report id for each test and the URLs for web_connectivity, from the
        Citizen Lab lists the collector was given (``--test-lists``; none: no URLs)."""
        data = parse_json(await read_body(request, settings.max_body))
        try:
            req = CheckIn.model_validate(data)
        except ValidationError as exc:
            raise ApiError(422, validation_message(exc)) from None
        wc = req.web_connectivity
        categories = _categories(wc.category_codes if wc is not None else None)
        ingestor: Ingestor = request.app.state.ingestor
        client = submitter_of(request.scope)
        network = ingestor.network(client)  # the address is looked up and forgotten, as for a submission
        rate_limit(client, network.asn, 1)
        cc = network.cc or req.probe_cc.upper()
        asn = network.asn or canonical_asn(req.probe_asn)
        limit = (
            MANUAL_URLS if req.run_type == "manual" else CHARGING_URLS if req.charging else ON_BATTERY_URLS
        )
        urls = lists.select(cc, categories, limit, sample=req.run_type != "manual")
        now = dt.datetime.now(dt.UTC)
        tests: dict[str, Any] = {
            t: {"report_id": report_id_for(ingestor.secret, t, cc, asn, now)} for t in CHECK_IN_TESTS
        }
        tests["web_connectivity"]["urls"] = [u.as_json() for u in urls]
        return json_response(
            {
                "v": 1,
                "probe_cc": cc,
                "probe_asn": asn,
                "probe_network_name": network.name if network.asn else None,
                "utc_time": f"{now:%Y-%m-%dT%H:%M:%SZ}",
                "conf": {"features": {}, "test_helpers": helpers},
                "tests": tests,
            }
        )

    @app.get("/api/v1/test-list/urls", responses={422: _4XX[422]})
    async def test_list_urls(
        request: Request,
        country_code: str | None = Query(None, pattern=CC_QUERY),
        probe_cc: str | None = Query(None, pattern=CC_QUERY, description="as country_code"),
        category_codes: str | None = Query(
            None, max_length=1024, pattern=CATEGORY_LIST, description="comma-separated"
        ),
        limit: int = Query(-1, ge=-1, le=1_000_000, description="-1: all"),
        debug: bool = Query(False, description="taken, as OONI's; adds nothing here"),
    ) -> Response:
        """OONI's test list for a country: its URLs, then the global ones."""
        once(request, ("country_code", "probe_cc", "category_codes", "limit", "debug"))
        cc = (country_code or probe_cc or "ZZ").upper()
        urls = lists.select(cc, _categories(category_codes), None if limit == -1 else limit)
        metadata = {"count": len(urls), "current_page": -1, "limit": -1, "next_url": "", "pages": 1}
        return json_response({"metadata": metadata, "results": [u.as_json() for u in urls]})

    @app.post(
        "/api/v1/submit_measurement",
        response_model=Submitted,
        responses=_4XX,
        openapi_extra=json_body(SubmitMeasurement),
    )
    async def submit_measurement(request: Request) -> Response:
        """A measurement as ``POST /report/{id}`` takes it, its report id in it; its content a JSON
        string (probe-cli's) or object."""
        body = await ingest(request.scope, await read_body(request, settings.max_body), (SUBMISSION, None))
        return Response(body, media_type="application/json")

    ooni_reads.add_routes(app)
