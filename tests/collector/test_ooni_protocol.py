"""What OpenAPI tells clients of the submissions agrees with what the collector takes."""

from __future__ import annotations

import datetime as dt
import itertools
import random
import re

import orjson
import pytest
from pydantic import ValidationError

from collector.conftest import MINIMAL
from reachwatch.collector.attribution import Network
from reachwatch.collector.base_keys import base_fields
from reachwatch.collector.finish import Staged
from reachwatch.collector.http import ApiError
from reachwatch.collector.ooni_protocol import (
    ASN,
    ASN_EXACT,
    ASN_MAX,
    START_TIME,
    START_TIME_EXACT,
    MeasurementIn,
    ReportOpen,
    new_report_id,
)
from reachwatch.collector.prepare import stage
from reachwatch.store.schema import COLUMN_NAMES, EARLIEST, IDENTITY, LATEST


def _taken(start_time: str) -> bool:
    m = {**MINIMAL, "measurement_start_time": start_time}
    try:
        stage(m, b"k" * 32, False, "", Network(), None, "content", None, identity=IDENTITY)
    except ApiError:
        return False
    return True


def test_the_specs_start_time_is_exactly_what_is_stored() -> None:
    """A schema-valid submission (Feb 30, year 0000, 1970-01-01: START_TIME let them through) was a
    422: schemathesis's positive-data check failed on it. Every month and day of the years around
    the edges of what the store keeps, leap years included."""
    exact, loose = re.compile(START_TIME_EXACT).fullmatch, re.compile(START_TIME).fullmatch
    years = (0, 1969, 1970, 1971, 1972, 1999, 2000, 2023, 2024, 2100, 2104, 2105, 2106, 9999)
    for year, month, day in itertools.product(years, range(0, 14), range(0, 33)):
        for clock in ("00:00:00", "23:59:59"):
            value = f"{year:04d}-{month:02d}-{day:02d} {clock}"
            assert bool(exact(value)) == (bool(loose(value)) and _taken(value)), value
    assert _taken(f"{EARLIEST:%Y-%m-%d %H:%M:%S}") and _taken(f"{LATEST:%Y-%m-%d %H:%M:%S}")


@pytest.mark.parametrize("value", ["2024-05-01 24:00:00", "2024-05-01T10:00:00", "2024-05-01 10:00:00\n"])
def test_the_specs_start_time_refuses_what_the_model_refuses(value: str) -> None:
    assert not re.fullmatch(START_TIME_EXACT, value) and not _taken(value)


def _stage_asn(probe_asn: str, network: Network | None = None) -> Staged:
    m = {**MINIMAL, "probe_asn": probe_asn}
    return stage(m, b"k" * 32, False, "", network or Network(), None, "content", None, identity=IDENTITY)


def _asn_taken(value: str) -> bool:
    try:
        _stage_asn(value)
    except ApiError:
        return False
    return True


def _asn_values() -> list[str]:
    """ASNs around 0, the 16-bit edge and ASN_MAX, with and without leading zeros, and random ones."""
    numbers = [0, 1, 9, 10, 65535, 65536, 999_999_999, 1_000_000_000]
    numbers += [ASN_MAX + d for d in range(-11, 12)] + [4_299_999_999, 4_300_000_000, 9_999_999_999]
    numbers += random.Random(5).sample(range(10**10), 300)
    values = [f"AS{n}" for n in numbers] + [f"AS{n:010d}" for n in numbers if n < 10**10]
    return [*values, "AS0001", "AS00", "AS00000000000", "AS012345678901", "AS", "AS-1", "as1", "AS1\n"]


def test_the_specs_asn_is_exactly_what_is_taken() -> None:
    """ASNs are 32-bit: one past ASN_MAX was stored; OpenAPI's pattern (and the fast envelope
    check, which uses it) must say exactly what a submission or a report may carry."""
    exact, loose = re.compile(ASN_EXACT).fullmatch, re.compile(ASN).fullmatch
    for value in _asn_values():
        taken = _asn_taken(value)
        assert bool(exact(value)) == taken, value
        digits = value[2:]
        assert taken == (bool(loose(value)) and int(digits) <= ASN_MAX), value
        opened = {"probe_cc": "PK", "software_name": "x", "software_version": "1", "test_name": "dnscheck"}
        opened.update(test_version="1", data_format_version="0.2.0", format="json", probe_asn=value)
        try:
            ReportOpen.model_validate(opened)
        except ValidationError:
            assert not taken, value
        else:
            assert taken, value


@pytest.mark.parametrize("value", ["AS4294967296", "AS9999999999", "AS04294967296"])
def test_an_asn_past_32_bits_is_a_422_saying_what_where_and_how_to_fix(value: str) -> None:
    assert base_fields({**MINIMAL, "probe_asn": value}) is None  # the model words the error
    with pytest.raises(ApiError) as caught:
        _stage_asn(value)
    assert caught.value.status == 422
    if len(value) == 12:  # ten digits (eleven are the pattern's error)
        assert caught.value.message == (
            f"content: probe_asn: {value} is past 4294967295, the largest ASN (they are 32-bit "
            "numbers): send the network's ASN as AS<number>, or AS0 when it is unknown"
        )


def _columns(staged: Staged) -> dict[str, object]:
    return dict(zip(COLUMN_NAMES, staged.values, strict=True))


@pytest.mark.parametrize(
    ("sent", "column"),
    [("AS0001", "AS1"), ("AS1", "AS1"), ("AS0", "AS0"), ("AS000", "AS0"), ("AS0065536", "AS65536")],
)
def test_the_asn_column_has_one_form_per_network_and_the_json_the_probes(sent: str, column: str) -> None:
    """OONI's spec example says AS0001: it was listed as AS0001, aggregated as 1 and found only by
    ``probe_asn=0001``. The column is canonical; the stored measurement keeps what was sent."""
    staged = _stage_asn(sent)
    assert _columns(staged)["probe_asn"] == column and _columns(staged)["x_probe_asn_claimed"] is None
    assert orjson.loads(staged.stored)["probe_asn"] == sent


def test_the_claimed_asn_is_compared_and_kept_canonical_in_its_column() -> None:
    same = _stage_asn("AS0001", Network("AS1", "Net", "PK"))
    assert _columns(same)["probe_asn"] == "AS1" and _columns(same)["x_probe_asn_claimed"] is None
    # the same network, spelt otherwise: the stored measurement keeps the probe's spelling
    assert orjson.loads(same.stored)["x_probe_asn_claimed"] == "AS0001"
    other = _stage_asn("AS0001", Network("AS2", "Net", "PK"))
    assert (_columns(other)["probe_asn"], _columns(other)["x_probe_asn_claimed"]) == ("AS2", "AS1")
    stored = orjson.loads(other.stored)
    assert (stored["probe_asn"], stored["x_probe_asn_claimed"]) == ("AS2", "AS0001")  # as the probe sent it


def test_a_report_id_carries_the_asns_number() -> None:
    req = ReportOpen.model_validate(
        {
            "probe_asn": "AS0001",
            "probe_cc": "PK",
            "software_name": "x",
            "software_version": "1",
            "test_name": "openvpn",
            "test_version": "1",
            "data_format_version": "0.2.0",
            "format": "json",
        }
    )
    assert "_openvpn_PK_1_n1_" in new_report_id(b"s" * 32, req, dt.datetime(2026, 1, 1, tzinfo=dt.UTC))


def test_a_test_name_may_hold_digits_as_ooni_probes_write_them() -> None:
    """Lower case, digits, underscores; nothing else (OONI's backend takes lower-case names)."""
    base = {
        "measurement_start_time": "2026-01-01 00:00:00",
        "probe_asn": "AS1",
        "probe_cc": "PK",
        "software_name": "ooniprobe",
        "software_version": "3.22.0",
        "data_format_version": "0.2.0",
        "test_keys": {},
    }
    assert MeasurementIn.model_validate({**base, "test_name": "ndt7"}).test_name == "ndt7"
    for bad in ("Web_Connectivity", "web connectivity", "web-connectivity", ""):
        with pytest.raises(ValidationError):
            MeasurementIn.model_validate({**base, "test_name": bad})
