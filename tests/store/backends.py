"""Fixtures shared by tests/store and tests/collector: the two storage backends and sample data.

``store_location`` is parametrized over DuckDB (a tmp file) and ClickHouse (a clickhouse-server
this session starts on loopback, with its own config and ports, killed by PID at the end).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from reachwatch.store import Store, clickhouse_server, open_store

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ooni"
_db_counter = itertools.count()


@pytest.fixture(scope="session")
def clickhouse_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if clickhouse_server.binary() is None:
        pytest.skip(
            "clickhouse-server is not installed (apt-get install clickhouse-server): ClickHouse tests skipped"
        )
    with clickhouse_server.running(tmp_path_factory.mktemp("clickhouse")) as url:
        yield url


#: A location ending so is opened behind the collector's journal (:func:`open_location`).
JOURNALED = "+journal"
#: The journal directory of each journaled location (a ClickHouse one has no file to sit beside).
_journals: dict[str, str] = {}


@pytest.fixture(params=["duckdb", pytest.param("clickhouse", marks=pytest.mark.clickhouse)])
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A DuckDB file or a ClickHouse database, for any test of what reads or writes a store."""
    if request.param == "duckdb":
        return str(tmp_path / "measurements.duckdb")
    url: str = request.getfixturevalue("clickhouse_url")
    return f"{url}/test{next(_db_counter)}"


@pytest.fixture(
    params=[
        "duckdb",
        "duckdb" + JOURNALED,
        pytest.param("clickhouse", marks=pytest.mark.clickhouse),
        pytest.param("clickhouse" + JOURNALED, marks=pytest.mark.clickhouse),
    ]
)
def store_variant(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """:func:`store_location` with or without the collector's journal in front: for the Store
    protocol's own tests, opened with :func:`open_location`."""
    suffix = JOURNALED if request.param.endswith(JOURNALED) else ""
    if request.param.startswith("duckdb"):
        location = str(tmp_path / "measurements.duckdb")
    else:
        url: str = request.getfixturevalue("clickhouse_url")
        location = f"{url}/test{next(_db_counter)}"
    _journals[location + suffix] = str(tmp_path / "journal")
    return location + suffix


def open_location(location: str) -> Store:
    """:func:`open_store` for a ``store_location``, a journaled one as the collector opens it."""
    if location.endswith(JOURNALED):
        return open_store(location.removesuffix(JOURNALED), journal=_journals[location])
    return open_store(location)


def load_samples(name: str = "measurements_real.jsonl") -> list[dict[str, Any]]:
    path = SHARED / name
    if not path.is_file():
        pytest.skip(f"shared OONI data absent: {path} (expected next to the repo, in shared/data/ooni)")
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


@pytest.fixture(scope="session")
def real_measurements() -> list[dict[str, Any]]:
    return load_samples("measurements_real.jsonl")


@pytest.fixture(scope="session")
def small_measurements() -> list[dict[str, Any]]:
    return load_samples("measurements_qa_emulated.jsonl")
