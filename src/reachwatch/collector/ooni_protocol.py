"""OONI's collector protocol: request/response models, report ids and measurement uids.

Report ids are self-validating (``..._n1_<nonce><mac>``, keyed with the collector's secret), so no
state is needed to accept a measurement for a report opened before a restart.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import string
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

BACKEND_VERSION = "reachwatch-collector-0.1.0"
#: an ASN as probes write it: what is validated (one past ASN_MAX is then a 422 of its own)
ASN = r"^AS[0-9]{1,10}$"
#: the largest ASN: they are 32-bit numbers (RFC 6793)
ASN_MAX = 4294967295
#: the digits of 0 to ASN_MAX, leading zeros allowed (``0001``), ten at most (no anchors)
ASN_DIGITS_EXACT = (
    r"(?:[0-9]{1,9}|[0-3][0-9]{9}|4[01][0-9]{8}|42[0-8][0-9]{7}|429[0-3][0-9]{6}|4294[0-8][0-9]{5}"
    r"|42949[0-5][0-9]{4}|429496[0-6][0-9]{3}|4294967[01][0-9]{2}|42949672[0-8][0-9]|429496729[0-5])"
)
#: ASN as OpenAPI tells clients, and as the fast envelope check takes it: exactly the ASNs taken
ASN_EXACT = rf"^AS{ASN_DIGITS_EXACT}$"
CC = r"^[A-Z]{2}$"
#: a test's name as OONI's probes write it (``web_connectivity``, ``ndt``, ``dnscheck``): lower
#: case, digits and underscores (OONI's backend takes lower-case names of up to 30 characters)
TEST_NAME = r"^[a-z0-9_]{1,64}$"
#: one line of printable text (no control characters)
TEXT = r"^[^\x00-\x1f\x7f]+$"
#: months, days, hours... in range: what is validated (Feb 30 and a date outside what the store
#: keeps are then 422s with their own message)
START_TIME = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01]) ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$"

#: months and days of any year (no Feb 29), and of 1970 from Jan 2 (EARLIEST: store/schema.py)
_MONTH_DAYS = (
    r"(0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8])"
)
_MONTH_DAYS_FROM_JAN_2 = r"01-(0[2-9]|[12][0-9]|3[01])|(0[3578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8])"


def exact_days(years: str, leap_years: str) -> str:
    """A regex (no anchors) of the calendar's days of ``years`` (a regex), Feb 29 of ``leap_years``."""
    return f"(({years})-({_MONTH_DAYS})|({leap_years})-02-29)"


#: START_TIME as OpenAPI tells clients: exactly the times taken (the calendar's, from 1970-01-02
#: to 2105-12-31, store/schema.py's EARLIEST and LATEST), so that a fuzzer's valid ones are stored
_STORED_DAYS = exact_days(
    r"197[1-9]|19[89][0-9]|20[0-9]{2}|210[0-5]", r"19(7[26]|8[048]|9[26])|20([02468][048]|[13579][26])|2104"
)
START_TIME_EXACT = (
    rf"^(1970-({_MONTH_DAYS_FROM_JAN_2})|{_STORED_DAYS}) ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$"
)
_ALNUM = string.ascii_letters + string.digits


def asn_range_error(value: str) -> str | None:
    """Why ``value`` (of the ASN pattern) names no network, or None: ASNs stop at :data:`ASN_MAX`."""
    if len(value) == 12 and value[2:] > str(ASN_MAX):  # ten digits: compared as text, as numbers
        return (
            f"{value} is past {ASN_MAX}, the largest ASN (they are 32-bit numbers): "
            "send the network's ASN as AS<number>, or AS0 when it is unknown"
        )
    return None


def canonical_asn(value: str) -> str:
    """One form per network: ``AS0001`` -> ``AS1`` (``AS0`` stays, OONI's unknown network). ``value``
    is of the ASN pattern; only one with a leading zero is rewritten (a cheap check per measurement)."""
    if len(value) > 3 and value[2] == "0":
        return "AS" + (value[2:].lstrip("0") or "0")
    return value


def _asn_in_range(value: str) -> str:
    error = asn_range_error(value)
    if error is not None:
        raise PydanticCustomError("asn_range", error)
    return value


#: a probe's ``probe_asn``, kept as sent (:func:`canonical_asn` gives the stored column's form)
Asn = Annotated[
    str, Field(pattern=ASN, json_schema_extra={"pattern": ASN_EXACT}), AfterValidator(_asn_in_range)
]


def _upper(value: Any) -> Any:
    """ASCII letters only: Python's own mapping makes ``ß`` ``SS`` and ``ﬀ`` ``FF`` (a country)."""
    return value.upper() if isinstance(value, str) and value.isascii() else value


def _lower(value: Any) -> Any:
    """ASCII letters only: the Kelvin sign's lower case is ``k``."""
    return value.lower() if isinstance(value, str) and value.isascii() else value


class ReportOpen(BaseModel):
    """What ooniprobe sends to open a report. Only ``test_name``, ``probe_cc`` and ``probe_asn`` go
    into the report id; the other fields take what :class:`MeasurementIn` takes for them (a semver
    build like ``3.22.0-alpha+git.1a2b`` included), so a probe whose measurements are accepted can
    always open a report for them. As OONI's backend does, a country in lower case is taken (upper
    cased), a test name in upper case (lower cased), and an empty ``software_version`` or a missing ``test_version`` too (neither is kept)."""

    model_config = ConfigDict(extra="ignore")
    probe_asn: Asn
    probe_cc: Annotated[str, BeforeValidator(_upper), Field(pattern=CC)]
    software_name: str = Field(pattern=TEXT, max_length=128)
    software_version: str = Field(pattern=r"^[^\x00-\x1f\x7f]*$", max_length=128)
    test_name: Annotated[str, BeforeValidator(_lower), Field(pattern=TEST_NAME)]
    test_version: str = Field(default="", pattern=r"^[^\x00-\x1f\x7f]*$", max_length=64)
    data_format_version: str = Field(pattern=TEXT, max_length=32)
    format: Literal["json"]


class ReportOpened(BaseModel):
    report_id: str
    backend_version: str
    supported_formats: list[str]


INPUT_MAX = 4096  #: characters of an input URL, and inputs of a list
#: the limit on the string itself, so that a long URL's message counts characters, not list items
InputText = Annotated[str, Field(max_length=INPUT_MAX)]


class MeasurementIn(BaseModel):
    """The base keys a measurement must have; everything else is kept as sent."""

    model_config = ConfigDict(extra="allow")
    input: InputText | Annotated[list[InputText], Field(max_length=INPUT_MAX)] | None = None
    measurement_start_time: str = Field(pattern=START_TIME, json_schema_extra={"pattern": START_TIME_EXACT})
    probe_asn: Asn
    probe_cc: str = Field(pattern=CC)
    probe_ip: str | None = Field(default=None, max_length=64)
    probe_network_name: str | None = Field(default=None, max_length=1024)
    report_id: str | None = Field(default=None, max_length=256)
    software_name: str = Field(max_length=128)
    software_version: str = Field(max_length=128)
    test_name: str = Field(pattern=TEST_NAME)
    data_format_version: str = Field(max_length=32)
    annotations: dict[str, Any] | None = None
    test_keys: dict[str, Any]


BASE_KEYS = tuple(MeasurementIn.model_fields)


class Base(NamedTuple):
    """The base keys the collector reads, validated (by ``base_keys.fast_base`` or :class:`MeasurementIn`)."""

    input: str | list[str] | None
    measurement_start_time: str
    probe_asn: str
    probe_cc: str
    probe_ip: str | None
    probe_network_name: str | None
    test_name: str


def _limits(name: str) -> int:
    return next(m.max_length for m in MeasurementIn.model_fields[name].metadata if hasattr(m, "max_length"))


#: the limits :func:`reachwatch.collector.base_keys.fast_base` checks (compiled there), from the
#: model's own; its patterns are checked there with ``str`` methods (``is_asn``, ``is_cc``...),
#: tested against these regexes
FAST_REQUIRED = tuple((n, _limits(n)) for n in ("software_name", "software_version", "data_format_version"))
FAST_OPTIONAL = (
    ("input", INPUT_MAX),
    *((n, _limits(n)) for n in ("probe_ip", "probe_network_name", "report_id")),
)


def model_fields(model: MeasurementIn) -> Base:
    return Base(
        model.input,
        model.measurement_start_time,
        model.probe_asn,
        model.probe_cc,
        model.probe_ip,
        model.probe_network_name,
        model.test_name,
    )


class Submission(BaseModel):
    model_config = ConfigDict(extra="ignore")
    format: Literal["json"]
    content: MeasurementIn


class Submitted(BaseModel):
    measurement_uid: str


class BatchSubmitted(BaseModel):
    measurement_uids: list[str]


def _mac(secret: bytes, text: str, size: int) -> str:
    return hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()[:size]


def new_report_id(secret: bytes, req: ReportOpen, now: dt.datetime) -> str:
    return report_id_for(secret, req.test_name, req.probe_cc, req.probe_asn, now)


def report_id_for(secret: bytes, test_name: str, probe_cc: str, probe_asn: str, now: dt.datetime) -> str:
    """A report id this collector accepts (:func:`valid_report_id`): for ``POST /report`` and
    for the report ids OONI's check-in hands a probe, one per test."""
    test = test_name.replace("_", "")
    prefix = f"{now:%Y%m%dT%H%M%SZ}_{test}_{probe_cc}_{canonical_asn(probe_asn)[2:]}_n1_"
    nonce = "".join(secrets.choice(_ALNUM) for _ in range(8))
    return prefix + nonce + _mac(secret, prefix + nonce, 12)


def valid_report_id(secret: bytes, report_id: str) -> bool:
    if len(report_id) > 200 or len(report_id) < 20 or not report_id.isascii():
        return False
    body, mac = report_id[:-12], report_id[-12:]
    return hmac.compare_digest(_mac(secret, body, 12), mac)


#: the last second (as a cheap key: day number and time of day), its text, and the last test name
#: without underscores; replaced whole, so thread-safe
_second: tuple[tuple[int, int, int, int], str, str, str] = ((0, 0, 0, 0), "", "", "")


def measurement_uid(now: dt.datetime, probe_cc: str, test_name: str, content_hash: str) -> str:
    """OONI's uid shape: ``20261128235800.123456_PK_webconnectivity_<16 hex>``."""
    global _second
    key = (now.toordinal(), now.hour, now.minute, now.second)  # replace(microsecond=0): 3x slower
    cached = _second
    if cached[0] != key or cached[2] != test_name:
        cached = _second = (
            key,
            f"{now.replace(microsecond=0):%Y%m%d%H%M%S}",
            test_name,
            test_name.replace("_", ""),
        )
    return f"{cached[1]}.{now.microsecond:06d}_{probe_cc}_{cached[3]}_{content_hash[:16]}"
