"""Dashboard pages as pure functions: models in, an HTML string out (no I/O, no framework).

Every page is script-free and carries its style inline; :data:`CSP` allows exactly that style
(by hash) and nothing else, so markup that slipped through could still run nothing and load nothing.
Links are prefixed with ``base`` (where the pages are mounted).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from reachwatch.report.blocked_days import with_blocked_days
from reachwatch.report.build import summary_groups
from reachwatch.report.finding import findings
from reachwatch.report.model import BLOCKING_STATES, Cell, Event, IspSummary, Measurement, Period
from reachwatch.report.render import csp_hash, stylesheet, web_environment
from reachwatch.report.text import country_title
from reachwatch.report.timeline import Timeline, build_timeline
from reachwatch.web.observations import view


def _css() -> str:
    return stylesheet("reachwatch.report", "templates/report.css") + stylesheet(
        "reachwatch.web", "static/dashboard.css"
    )


CSS = _css()
CSP = (
    f"default-src 'none'; style-src {csp_hash(CSS)}; img-src 'self' data:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def _page(template: str, base: str, page_title: str, **context: Any) -> str:
    return (
        web_environment()
        .get_template(template)
        .render(base=base.rstrip("/"), css=CSS, page_title=page_title, **context)
    )


@dataclass(frozen=True, slots=True)
class CountryRow:
    cc: str
    country: str
    networks: int
    domains: int
    measurements: int
    judged: int
    blocking: int
    top: list[tuple[str, int]]


def country_rows(summary: Sequence[IspSummary]) -> list[CountryRow]:
    rows = []
    for cc in sorted({r.probe_cc for r in summary}):
        mine = [r for r in summary if r.probe_cc == cc]
        judged = [r for r in mine if r.state != "insufficient"]
        blocked = Counter(r.domain for r in judged if r.state in BLOCKING_STATES)
        rows.append(
            CountryRow(
                cc=cc,
                country=country_title(cc),
                networks=len({r.probe_asn for r in mine}),
                domains=len({r.domain for r in mine}),
                measurements=sum(r.n_measurements for r in mine),
                judged=len(judged),
                blocking=sum(blocked.values()),
                top=sorted(blocked.items(), key=lambda kv: (-kv[1], kv[0]))[:5],
            )
        )
    return sorted(rows, key=lambda r: (-r.blocking, r.cc))


def _query(period: Period | None) -> str:
    return f"?since={period.start}&until={period.end}" if period else ""


def overview_page(summary: Sequence[IspSummary], period: Period | None = None, base: str = "") -> str:
    return _page(
        "overview.html.j2", base, "Countries", rows=country_rows(summary), period=period, query=_query(period)
    )


def country_page(
    cc: str, summary: Sequence[IspSummary], period: Period, base: str = "", cells: Sequence[Cell] = ()
) -> str:
    """The per-ISP table of ``cc``; its blocked days (and the finding's dates) come from ``cells``,
    the daily cells of the same period, as in the report (:func:`~reachwatch.report.render_html`)."""
    mine = with_blocked_days([r for r in summary if r.probe_cc == cc], cells)
    return _page(
        "country.html.j2",
        base,
        country_title(cc),
        cc=cc,
        country=country_title(cc),
        findings=findings(mine, period),
        groups=summary_groups(mine),
        period=period,
    )


@dataclass(frozen=True, slots=True)
class _Group:
    heading: str
    items: list[tuple[Timeline, str]]


def _timeline_groups(
    cells: Sequence[Cell], period: Period, events: Sequence[Event], by: str, base: str
) -> list[_Group]:
    """Group by ``by`` ("domain": one chart per network; "asn": one chart per site)."""
    series: dict[tuple[str, str, str], list[Cell]] = {}
    for c in cells:
        series.setdefault((c.probe_cc, c.domain, c.probe_asn), []).append(c)
    groups: dict[str, _Group] = {}
    for (cc, domain, asn), mine in sorted(
        series.items(), key=lambda kv: (kv[0][0], kv[0][1], int(kv[0][2][2:]))
    ):
        name = next((c.probe_network_name for c in mine if c.probe_network_name), asn)
        if by == "domain":
            heading, title, sub, href = f"{domain} in {country_title(cc)}", name, asn, f"/asn/{quote(asn)}"
        else:
            heading, title, sub = f"{name} ({asn}, {country_title(cc)})", domain, ""
            href = f"/domain/{quote(domain, safe='')}?cc={quote(cc)}"
        tl = build_timeline(f"{cc}|{domain}|{asn}", title, sub, mine, period, events)
        groups.setdefault(heading, _Group(heading, [])).items.append((tl, base.rstrip("/") + href))
    return list(groups.values())


def domain_page(
    domain: str,
    cells: Sequence[Cell],
    events: Sequence[Event],
    period: Period,
    base: str = "",
    cc: str | None = None,
) -> str:
    mine = [c for c in cells if c.domain == domain and (cc is None or c.probe_cc == cc)]
    heading = f"{domain}" + (f" in {country_title(cc)}" if cc else "")
    return _page(
        "timelines.html.j2",
        base,
        heading,
        heading=heading,
        period=period,
        keep=[("cc", cc)] if cc else [],
        groups=_timeline_groups(mine, period, events, "domain", base),
    )


def asn_page(asn: str, cells: Sequence[Cell], events: Sequence[Event], period: Period, base: str = "") -> str:
    mine = [c for c in cells if c.probe_asn == asn]
    name = next((c.probe_network_name for c in mine if c.probe_network_name), "")
    heading = f"{name} ({asn})" if name else asn
    return _page(
        "timelines.html.j2",
        base,
        heading,
        heading=heading,
        period=period,
        keep=[],
        groups=_timeline_groups(mine, period, events, "asn", base),
    )


def measurement_page(m: Measurement, base: str = "") -> str:
    return _page("measurement.html.j2", base, f"Measurement {m.measurement_uid}", m=view(m))


def error_page(status: int, message: str, base: str = "") -> str:
    return _page("error.html.j2", base, str(status), status=status, message=message)
