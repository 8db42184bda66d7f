"""The ingest fast paths give what the slow ones give: envelope check, hashing, compression."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import re
from typing import Any

import pytest
from blake3 import blake3
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from reachwatch.collector.base_keys import base_fields, is_asn, is_cc, is_test_name, start_time_of
from reachwatch.collector.finish import keyed_hash, probe_id_hash
from reachwatch.collector.ooni_protocol import (
    ASN,
    ASN_EXACT,
    BASE_KEYS,
    CC,
    START_TIME,
    TEST_NAME,
    MeasurementIn,
    measurement_uid,
    model_fields,
)
from reachwatch.collector.prepare import _scrubber
from reachwatch.collector.privacy import Scrubber
from reachwatch.store.compression import MANY, compress, compress_many, decompress

ODD_VALUES: list[Any] = [
    None,
    "",
    "x",
    "AS1\n",
    "AS0001",  # OONI's spec example: taken (the column is then AS1)
    "AS4294967295",
    "AS4294967296",  # past 32 bits: the model refuses it
    "AS9999999999",
    "PK\n",
    "2024-01-01 00:00:00\n",
    "2024-01-01T00:00:00",
    "web_connectivity\n",
    "a" * 33,
    "a" * 65,
    "a" * 129,
    "a" * 257,
    "a" * 1025,
    "a" * 4097,
    ["https://a.example/"],
    [],
    1,
    1.5,
    True,
    {},
    {"a": 1},
    [1],
]


def _model(m: dict[str, Any]) -> Any:
    try:
        return model_fields(MeasurementIn.model_validate({k: m[k] for k in BASE_KEYS if k in m}))
    except ValidationError:
        return "invalid"


def test_base_fields_never_accepts_what_the_model_rejects(real_measurements: list[dict[str, Any]]) -> None:
    checked = accepted = 0
    for m in real_measurements[:20]:
        variants = [m]
        for key in BASE_KEYS:
            gone = copy.copy(m)
            gone.pop(key, None)
            variants.append(gone)
            for value in ODD_VALUES:
                odd = copy.copy(m)
                odd[key] = value
                variants.append(odd)
        for v in variants:
            fast = base_fields(v)
            checked += 1
            if fast is not None:  # None: the model decides (and words the error)
                accepted += 1
                assert fast == _model(v), v
    assert accepted > len(real_measurements[:20]) and checked > 1000


@pytest.mark.parametrize("keep_gil", [True, False])
@pytest.mark.parametrize("size", [0, 1, 2046, 2047, 2048, 4094, 6621, 100_000])
def test_keyed_hash_is_blake3_or_an_older_stores_blake2b(size: int, keep_gil: bool) -> None:
    """The same 128 bits whether hashed at once or in pieces that keep the GIL."""
    data = bytes(range(256)) * (size // 256 + 1)
    data = data[:size]
    key = b"k" * 32
    assert keyed_hash(data, key, keep_gil) == blake3(data, key=key).hexdigest(16)
    assert (
        keyed_hash(data, key, keep_gil, legacy=True)
        == hashlib.blake2b(data, digest_size=16, key=key).hexdigest()
    )


def test_probe_id_hash_remembers_only_the_same_report_and_key() -> None:
    def expected(report_id: str, key: bytes) -> str:
        return hashlib.blake2b(report_id.encode(), digest_size=8, key=key).hexdigest()

    # the cache starts empty-handed: "" with a fresh key is hashed, not answered from the sentinel
    for report_id, key in [
        ("", b"k" * 32),
        ("a", b"k" * 32),
        ("a", b"k" * 32),
        ("a", b"j" * 32),
        ("", b"j" * 32),
    ]:
        assert probe_id_hash(report_id, key) == expected(report_id, key)


def test_measurement_uid_follows_the_second_and_the_test_name() -> None:
    t = dt.datetime(2026, 11, 29, 0, 8, 35, 826764, tzinfo=dt.UTC)
    cases = [
        (t, "web_connectivity", "20261129000835.826764_PK_webconnectivity_0123456789abcdef"),
        (
            t.replace(microsecond=1),
            "web_connectivity",
            "20261129000835.000001_PK_webconnectivity_0123456789abcdef",
        ),
        (t.replace(microsecond=1), "dns_check", "20261129000835.000001_PK_dnscheck_0123456789abcdef"),
        (t.replace(second=36), "dns_check", "20261129000836.826764_PK_dnscheck_0123456789abcdef"),
        (t.replace(day=30), "dns_check", "20261130000835.826764_PK_dnscheck_0123456789abcdef"),
        (t.replace(year=2027), "dns_check", "20271129000835.826764_PK_dnscheck_0123456789abcdef"),
        (t, "web_connectivity", "20261129000835.826764_PK_webconnectivity_0123456789abcdef"),
    ]
    for now, test_name, uid in cases:
        assert measurement_uid(now, "PK", test_name, "0123456789abcdef0123") == uid


def test_the_remembered_scrubber_is_the_one_built() -> None:
    for submitter, probe_ip in [("10.1.2.3", ""), ("10.1.2.3", "192.0.2.7"), ("2001:db8::1", "10.1.2.3")]:
        assert _scrubber(submitter, probe_ip).needles == Scrubber((submitter, probe_ip)).needles


@pytest.mark.parametrize("copies", [1, MANY])  # frame by frame, and in one multi-frame call
def test_compress_many_is_compress(copies: int) -> None:
    data = [b"", b'{"a": 1}', b"x" * 10_000, bytes(range(256)) * 30] * copies
    frames = compress_many(data)
    assert frames == [compress(d) for d in data]
    assert [decompress(f) for f in frames] == data


# -- the base keys' patterns, checked without regexes (prepare.is_asn, is_cc...) ----------------------

_NEAR = st.text(alphabet="AS0123456789az_Z-: \n\u0661\u00e9", max_size=24)


@settings(max_examples=400)
@given(
    st.one_of(st.from_regex(ASN_EXACT, fullmatch=True), st.from_regex(ASN, fullmatch=True), _NEAR, st.text())
)
def test_is_asn_is_the_asn_pattern_and_range(value: str) -> None:
    assert is_asn(value) == (re.fullmatch(ASN_EXACT, value) is not None)


@settings(max_examples=400)
@given(
    st.one_of(
        st.from_regex(CC, fullmatch=True), st.text(alphabet="AZaz\u00c4\u0130\u212a1 ", max_size=3), st.text()
    )
)
def test_is_cc_is_the_country_pattern(value: str) -> None:
    assert is_cc(value) == (re.fullmatch(CC, value) is not None)


@settings(max_examples=400)
@given(st.one_of(st.from_regex(TEST_NAME, fullmatch=True), _NEAR, st.text(max_size=70)))
def test_is_test_name_is_the_test_name_pattern(value: str) -> None:
    assert is_test_name(value) == (re.fullmatch(TEST_NAME, value) is not None)


def _iso_or_none(value: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        return None


@settings(max_examples=600)
@given(
    st.one_of(
        st.from_regex(START_TIME, fullmatch=True),
        st.from_regex(r"[0-9+\-]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9.]{2}\n?", fullmatch=True),
        st.datetimes().map(str),
        st.text(alphabet="0123456789-: T.\u0661Z+", min_size=17, max_size=21),
    )
)
def test_start_time_of_is_the_pattern_and_a_day_of_the_calendar(value: str) -> None:
    """Taken exactly when the model's pattern matches and the day exists (Feb 30 is the model's
    and stage's to refuse, with its own message), read as ``fromisoformat`` reads it."""
    matches = re.fullmatch(START_TIME, value) is not None
    expected = _iso_or_none(value) if matches else None
    assert start_time_of(value) == expected
