"""Starlette routes for the dashboard, over any :class:`DataSource` (the store, or memory in tests).

``routes(source)`` is a :class:`~starlette.routing.Router`; mount it where you like::

    app.mount("/dashboard", routes(source))

Pages: ``/`` (countries), ``/country/{cc}`` (per-ISP table), ``/domain/{domain}?cc=``,
``/asn/{asn}`` (timelines), ``/measurement/{uid}`` (raw observations). Optional ``since`` and
``until`` (YYYY-MM-DD) select the period. Every answer carries :data:`~.pages.SECURITY_HEADERS`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from typing import Protocol

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route, Router

from reachwatch.errors import UserError
from reachwatch.report.model import Cell, Event, IspSummary, Measurement, Period
from reachwatch.store.query import domain_filter
from reachwatch.web import pages

CC = re.compile(r"^[A-Z]{2}$")
ASN = re.compile(r"^AS\d{1,10}$")
DOMAIN = re.compile(r"^[A-Za-z0-9.-]{1,253}$")
UID = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")


class DataSource(Protocol):
    """What the pages read. Filters left ``None`` mean "all"; ``period`` is inclusive. When a
    network blocked a site is read from ``cells()``, whatever the source (``pages.country_page``)."""

    def period(self) -> Period | None: ...

    def summary(
        self, *, probe_cc: str | None = None, period: Period | None = None
    ) -> Sequence[IspSummary]: ...

    def cells(
        self,
        *,
        probe_cc: str | None = None,
        probe_asn: str | None = None,
        domain: str | None = None,
        period: Period | None = None,
    ) -> Sequence[Cell]: ...

    def events(self, *, period: Period | None = None) -> Sequence[Event]: ...

    def measurement(self, uid: str) -> Measurement | None: ...


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=pages.SECURITY_HEADERS)


def _base(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _param(request: Request, name: str, pattern: re.Pattern[str], norm: Callable[[str], str] = str) -> str:
    """A path parameter in the form the data keeps it (``norm``), checked against ``pattern``."""
    value = norm(str(request.path_params[name]))
    if not pattern.match(value):
        raise UserError(f"not a valid {name}", where=request.url.path)
    return value


def _upper(value: str) -> str:
    return value.upper()


def _asn(value: str) -> str:
    """``AS64501`` as the API takes it: any case, with or without ``AS``, leading zeros dropped."""
    digits = value.upper().removeprefix("AS")
    return f"AS{int(digits)}" if digits.isdigit() and len(digits) <= 10 else value


def _period(request: Request, source: DataSource) -> Period | None:
    since, until = request.query_params.get("since"), request.query_params.get("until")
    default = source.period()
    if not since and not until:
        return default
    try:
        start = dt.date.fromisoformat(since) if since else (default.start if default else None)
        end = dt.date.fromisoformat(until) if until else (default.end if default else None)
    except ValueError:
        raise UserError("since/until must be dates", where="query", fix="use YYYY-MM-DD") from None
    if start is None or end is None:
        return None
    if end < start:
        raise UserError("until is before since", where="query")
    return Period(start=start, end=end)


Handler = Callable[[Request], HTMLResponse]


def _guarded(handler: Handler) -> Handler:
    def endpoint(request: Request) -> HTMLResponse:
        try:
            return handler(request)
        except UserError as exc:
            return _html(pages.error_page(400, exc.render(), _base(request)), 400)

    return endpoint


def routes(source: DataSource) -> Router:
    def overview(request: Request) -> HTMLResponse:
        period = _period(request, source)
        return _html(pages.overview_page(source.summary(period=period), period, _base(request)))

    def country(request: Request) -> HTMLResponse:
        cc = _param(request, "cc", CC, _upper)
        period = _period(request, source)
        rows = source.summary(probe_cc=cc, period=period)
        if not rows or period is None:
            return _html(pages.error_page(404, f"No results for country {cc}.", _base(request)), 404)
        cells = source.cells(probe_cc=cc, period=period)
        return _html(pages.country_page(cc, rows, period, _base(request), cells))

    def _timelines(request: Request, cells: Sequence[Cell], render: Callable[[Period], str]) -> HTMLResponse:
        if not cells:
            return _html(pages.error_page(404, "No data for this selection.", _base(request)), 404)
        return _html(render(_period(request, source) or Period.covering(cells)))

    def domain(request: Request) -> HTMLResponse:
        # as the API and the CLI take it: any case, a final dot, Unicode (stored as punycode)
        name = _param(request, "domain", DOMAIN, domain_filter)
        cc = _upper(request.query_params.get("cc") or "") or None
        if cc is not None and not CC.match(cc):
            raise UserError("cc must be a two-letter country code", where="query")
        period = _period(request, source)
        cells = source.cells(domain=name, probe_cc=cc, period=period)
        events = source.events(period=period)
        return _timelines(
            request, cells, lambda p: pages.domain_page(name, cells, events, p, _base(request), cc)
        )

    def asn(request: Request) -> HTMLResponse:
        number = _param(request, "asn", ASN, _asn)
        period = _period(request, source)
        cells = source.cells(probe_asn=number, period=period)
        events = source.events(period=period)
        return _timelines(request, cells, lambda p: pages.asn_page(number, cells, events, p, _base(request)))

    def measurement(request: Request) -> HTMLResponse:
        uid = _param(request, "uid", UID)
        m = source.measurement(uid)
        if m is None:
            return _html(pages.error_page(404, "No such measurement.", _base(request)), 404)
        return _html(pages.measurement_page(m, _base(request)))

    return Router(
        routes=[
            Route("/", _guarded(overview), name="overview"),
            Route("/country/{cc}", _guarded(country), name="country"),
            Route("/domain/{domain}", _guarded(domain), name="domain"),
            Route("/asn/{asn}", _guarded(asn), name="asn"),
            Route("/measurement/{uid}", _guarded(measurement), name="measurement"),
        ]
    )


def mount(source: DataSource, path: str = "/dashboard") -> Mount:
    return Mount(path, app=routes(source), name="dashboard")
