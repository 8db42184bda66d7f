"""The ingest fast paths give what the slow ones give: envelope check, hashing, compression."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
from typing import Any

import pytest
from blake3 import blake3
from pydantic import ValidationError

from reachwatch.collector.finish import keyed_hash, probe_id_hash
from reachwatch.collector.ooni_protocol import (
    BASE_KEYS,
    MeasurementIn,
    measurement_uid,
    model_fields,
)
from reachwatch.collector.prepare import _scrubber, base_fields
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
