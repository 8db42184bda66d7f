"""The read routes' query parameters: their patterns (as OpenAPI tells clients), how each is read
(an empty one left out, OONI's comma lists, dates in any ISO form) and the 422 for any other."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal, get_args

from fastapi import Query
from pydantic import BeforeValidator
from starlette.requests import Request

from reachwatch.collector.http import STORE_FAILING, ApiError
from reachwatch.collector.ooni_protocol import ASN_DIGITS_EXACT, ASN_MAX, exact_days
from reachwatch.collector.ooni_protocol import TEST_NAME as TEST_NAME_PATTERN
from reachwatch.store import Filters
from reachwatch.store.query import AXES, domain_filter

OrderBy = Literal["measurement_start_time", "input", "probe_cc", "probe_asn", "test_name"]
#: OONI's aggregation axis this store cannot answer, and why
UNSUPPORTED_AXES = {
    "blocking_type": "OONI reads it from its own scores, which are not stored here; the list's "
    "blocking filter (blocking=dns, tcp_ip, http-failure, http-diff) selects by blocking type",
}
#: the white space around a value or a list's item that is ignored (ASCII: str.strip() would also
#: drop control characters no pattern in the spec could say)
_BLANKS = " \t\n\r\v\f"
_BLANK = r"[ \t\n\r\v\f]"
#: a filter that is empty or blank (``probe_cc=``): left out, as OONI's API reads it (a form's
#: empty field); OpenAPI's patterns take it
EMPTY = rf"^{_BLANK}*$"


def list_of(item: str) -> str:
    """The regex (anchored) of OONI's comma list of ``item`` (a regex without anchors), as
    :func:`_items` takes it: blanks around each item, empty items (dropped), or nothing at all."""
    field = rf"{_BLANK}*(?:(?:{item}){_BLANK}*)?"
    return f"^{field}(?:,{field})*$"


#: filters as people type them (OONI's API takes ``AS123`` or ``123``), one or a comma list of
#: several (OONI's ``probe_cc=IT,DE``): each item normalised by :func:`filters_of`
CC_ITEM = r"[A-Za-z]{2}"
ASN_ITEM = r"(?:[Aa][Ss])?[0-9]{1,10}"
#: ASN_ITEM as OpenAPI tells clients: exactly the ASNs taken (to ASN_MAX, leading zeros allowed)
ASN_ITEM_EXACT = rf"(?:[Aa][Ss])?{ASN_DIGITS_EXACT}"
#: OONI's test names as stored (``web_connectivity``), as ``MeasurementIn`` takes them
TEST_NAME_ITEM = TEST_NAME_PATTERN.strip("^$")  # as measurements take them (ndt7)
CC_QUERY, ASN_QUERY, ASN_QUERY_EXACT, TEST_NAME = (
    list_of(CC_ITEM), list_of(ASN_ITEM), list_of(ASN_ITEM_EXACT), list_of(TEST_NAME_ITEM),
)  # fmt: skip
#: the longest comma list a filter takes, in characters (each item is a literal in the SQL)
LIST_CHARS = 4096
#: the most rows a page of the list has: a page is read into memory (~5 KB a row: the store's
#: row, the answer's, its JSON), ~50 MB at this limit; OONI's API takes up to 1,000,000
LIST_ROWS = 10_000
#: a time of day and UTC offset after a date, optional
_TIME = r"([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?)?$"
#: months, days, hours, minutes in range: what is validated (Feb 30 is then a 422 of its own)
DATE = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])" + _TIME
#: DATE, or empty (left out)
DATE_OR_EMPTY = f"{EMPTY}|{DATE}"
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
DATE_EXACT_OR_EMPTY = f"{EMPTY}|{DATE_EXACT}"
UID = r"^[0-9]{14}\.[0-9]{6}_[A-Z]{2}_[a-z]{1,64}_[0-9a-f]{16}$"
FILTERS = (
    "probe_cc", "probe_asn", "domain", "input", "category_code", "test_name", "since", "until", "attributed",
)  # fmt: skip
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
#: OONI's filters this store cannot answer (not among its columns: inside each raw measurement,
#: which is kept compressed), and the routes of OONI's API that take them: refused by name, never
#: ignored (an empty value is left out, as every filter's)
NOT_STORED = {
    "software_version": ("/api/v1/measurements",),
    "test_version": ("/api/v1/measurements",),
    "engine_version": ("/api/v1/measurements",),
    "ooni_run_link_id": ("/api/v1/measurements", "/api/v1/aggregation"),
}
TimeGrain = Literal["hour", "day", "week", "month", "year", "auto"]
#: the longest ``since``..``until`` counted by the hour (OONI's API's limit: a year of hours per
#: country would be a response of millions of rows)
HOURLY_DAYS = 7
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "no such measurement"}, **STORE_FAILING}


def _empty_is_none(value: Any) -> Any:
    """An empty or blank flag (``anomaly=``) left out, as every filter (:func:`given`)."""
    return None if isinstance(value, str) and not value.strip(_BLANKS) else value


#: A flag filter (``true``/``false``), left out when empty
Flag = Annotated[bool | None, BeforeValidator(_empty_is_none)]
_LIST = "one, or several separated by commas (OONI's list: any of them); empty: left out"
#: The filters both read routes take, declared once
CcFilter = Annotated[
    str | None,
    Query(
        max_length=LIST_CHARS,
        description=f"country code, in any case: {_LIST} (IT,DE)",
        json_schema_extra={"pattern": CC_QUERY},
    ),
]
AsnFilter = Annotated[
    str | None,
    Query(
        max_length=LIST_CHARS,
        description=f"ASN, as AS123 or 123: {_LIST} (AS30722,3269)",
        json_schema_extra={"pattern": ASN_QUERY_EXACT},
    ),
]
DomainFilter = Annotated[
    str | None,
    Query(
        max_length=LIST_CHARS,
        description=f"host name or URL, in any case (blanks around each ignored): {_LIST}",
    ),
]
InputFilter = Annotated[
    str | None, Query(max_length=4096, description="the URL or input measured; empty: left out")
]
CategoryFilter = Annotated[
    str | None, Query(max_length=16, description="Citizen Lab's category; empty: left out")
]
TestNameFilter = Annotated[
    str | None,
    Query(
        max_length=LIST_CHARS,
        description=f"OONI's test name (web_connectivity): {_LIST}",
        json_schema_extra={"pattern": TEST_NAME},
    ),
]
SinceFilter = Annotated[
    str | None, Query(pattern=DATE_OR_EMPTY, json_schema_extra={"pattern": DATE_EXACT_OR_EMPTY})
]
UntilFilter = SinceFilter
AttributedFilter = Annotated[
    Flag,
    Query(
        description=(
            "true: only the measurements whose submitter the collector placed on a network (its "
            "ASN and country databases); false: only the others, counted under the network the "
            "probe claimed (not OONI's)"
        ),
    ),
]


def time_of(value: str | None, name: str) -> dt.datetime | None:
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


def _asn(value: str) -> str:
    """``AS123``, ``as123``, ``123``, ``AS0123`` and ``0123`` are one network, stored as ``AS123``
    (``ooni_protocol.canonical_asn``); past ASN_MAX (32 bits) no network is, so it is a 422."""
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


#: BLOCKING as OpenAPI tells clients: a value in any case, blanks around it
def _any_case(word: str) -> str:
    """A regex of ``word`` in any case (ASCII letters)."""
    return "".join(f"[{c.upper()}{c}]" if c.isalpha() else re.escape(c) for c in word)


BLOCKING_EXACT = rf"^{_BLANK}*(" + "|".join(_any_case(v) for v in BLOCKING) + rf")?{_BLANK}*$"
#: ``time_grain`` and ``format`` in any case, as OONI's API takes them
GRAIN_ANY_CASE = "^(" + "|".join(_any_case(g) for g in get_args(TimeGrain)) + ")$"
FORMAT_ANY_CASE = f"^({_any_case('json')}|{_any_case('csv')})$"


def blocking_of(value: str | None) -> str | None:
    """A known ``blocking`` value in any case (empty: left out); anything else would match
    nothing, silently."""
    value = given(value)
    if value is None:
        return None
    known = value.strip(_BLANKS).lower()
    if known not in BLOCKING:
        raise ApiError(422, f"blocking: {value[:32]!r} is not one of {', '.join(BLOCKING)}")
    return known


def once(request: Request, names: tuple[str, ...]) -> None:
    """Each parameter one of ``names``, given at most once: a misspelt or unsupported filter
    (``cc=PK``, OONI's ``anomaly=true``) would silently widen the answer to every measurement, and a
    parameter given twice would silently take its last value; both are refused instead. OONI's
    filters this store cannot answer (:data:`NOT_STORED`) are refused as such."""
    for name, value in request.query_params.multi_items():
        if request.url.path in NOT_STORED.get(name, ()):
            if given(value) is not None:
                raise ApiError(
                    422,
                    f"{name}: OONI's filter, not supported by this collector: it keeps {name} only "
                    "inside each raw measurement (compressed), not as a column a read can select "
                    "by; leave the parameter out (or empty)",
                )
            continue
        if name not in names:
            raise ApiError(422, f"unknown query parameter {name[:64]!r}: this route takes {', '.join(names)}")
    for name in names:
        if len(request.query_params.getlist(name)) > 1:
            raise ApiError(422, f"{name}: given more than once")


#: what no host name holds: spaces, a URL's separators
_NOT_IN_HOST = re.compile(r"[\s,/?#@]")


def given(value: str | None) -> str | None:
    """``value``, or None when it is empty or blank: a filter given so is left out, as OONI's API
    reads ``probe_cc=`` (what a form sends for a field left empty)."""
    return None if value is None or not value.strip(_BLANKS) else value


def _items(value: str | None) -> list[str]:
    """OONI's comma list (``IT, DE``): each item without the blanks around it, empty items
    dropped (as OONI's), each item once; none for an empty value."""
    if value is None:
        return []
    return [item for item in dict.fromkeys(one.strip(_BLANKS) for one in value.split(",")) if item]


def _any_of(
    name: str, value: str | None, item: str, how: str, normal: Callable[[str], str]
) -> tuple[str, ...] | None:
    """The values of a filter given as one or a comma list: each item must match ``item`` (a
    regex), else a 422 naming it and saying ``how`` to write one; then ``normal`` (the column's
    form). None (the filter left out) when no item is given."""
    out: list[str] = []
    for one in _items(value):
        if not re.fullmatch(item, one):
            raise ApiError(422, f"{name}: {one[:64]!r} is not {how} (several: separate them with commas)")
        out.append(normal(one))
    return tuple(dict.fromkeys(out)) or None


def _domain(value: str) -> str:
    """One item of ``domain``: a host or a URL in any case (``store.query.domain_filter``)."""
    host = domain_filter(value)
    if not host:
        # it used to match only the rows with an empty column (measurements without a URL),
        # which nobody means by it; ``domain=...`` is empty once its final dots are dropped
        raise ApiError(422, f"domain: {value[:64]!r} names no host: give a host name (or a URL)")
    if _NOT_IN_HOST.search(host):
        raise ApiError(
            422,
            f"domain: {value[:64]!r} is not one host name: give host names (or URLs), several "
            "separated by commas, or group by domain in /api/v1/aggregation (axis_x=domain)",
        )
    return host


def filters_of(
    probe_cc: str | None,
    probe_asn: str | None,
    domain: str | None,
    input: str | None,
    category_code: str | None,
    test_name: str | None,
    since: str | None,
    until: str | None,
    blocking: str | None,
    oonis_list_edges: bool = False,
) -> Filters:
    """The filters as the store takes them: an empty or blank one left out (:func:`given`);
    ``probe_cc``, ``probe_asn``, ``domain`` and ``test_name`` one value or OONI's comma list;
    ``oonis_list_edges``: the window is after ``since``, up to and including ``until`` (OONI's
    list's), else from ``since`` included to ``until`` excluded."""
    input, category_code = given(input), given(category_code)
    start, end = time_of(given(since), "since"), time_of(given(until), "until")
    if start is not None and end is not None and start >= end:
        # an empty answer would look like "nothing measured then"
        edges = "after since, up to and including until" if oonis_list_edges else "since included, until not"
        raise ApiError(422, f"since must be before until ({edges}): swap them")
    domains = tuple(dict.fromkeys(_domain(item) for item in _items(domain)))
    return Filters(
        probe_cc=_any_of("probe_cc", probe_cc, CC_ITEM, "a two-letter country code (IT or it)", str.upper),
        probe_asn=_any_of("probe_asn", probe_asn, ASN_ITEM, "an ASN (AS123 or 123)", _asn),
        domain=domains or None,
        input=input,
        category_code=category_code,
        test_name=_any_of(
            "test_name", test_name, TEST_NAME_ITEM, "a test name as OONI writes it (web_connectivity)", str
        ),
        since=start,
        until=end,
        since_included=not oonis_list_edges,
        until_included=oonis_list_edges,
        blocking=blocking_of(blocking),
    )


AXIS_HELP = f"one of {', '.join(AXES)} (OONI's, but blocking_type)"


def axis_of(name: str, value: str) -> str:
    """An aggregation axis of :data:`AXES` (an empty one is left out, as OONI's)."""
    if value in AXES:
        return value
    if value in UNSUPPORTED_AXES:
        raise ApiError(
            422, f"{name}: {value} is OONI's axis, not supported by this collector: {UNSUPPORTED_AXES[value]}"
        )
    raise ApiError(422, f"{name}: {value[:64]!r} is not an axis: one of {', '.join(AXES)}")


def grain_of(time_grain: str | None, f: Filters) -> str:
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
