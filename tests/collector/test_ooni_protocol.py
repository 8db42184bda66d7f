"""What OpenAPI tells clients of the submissions agrees with what the collector takes."""

from __future__ import annotations

import itertools
import re

import pytest

from collector.conftest import MINIMAL
from reachwatch.collector.attribution import Network
from reachwatch.collector.http import ApiError
from reachwatch.collector.ooni_protocol import START_TIME, START_TIME_EXACT
from reachwatch.collector.prepare import stage
from reachwatch.store.schema import EARLIEST, IDENTITY, LATEST


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
