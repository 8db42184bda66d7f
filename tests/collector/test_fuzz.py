"""Property-based fuzzing of every route from the OpenAPI spec (schemathesis): never a 5xx.

Default: 25 cases per route and mode (positive, negative): a few hundred in all. ``REACHWATCH_FUZZ_EXAMPLES=10000`` for the long run (per route).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis not installed: fuzz test skipped")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402

from collector.conftest import live_server  # noqa: E402
from reachwatch.collector.config import Settings  # noqa: E402

EXAMPLES = int(os.environ.get("REACHWATCH_FUZZ_EXAMPLES", "25"))


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx: Any, value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return json.dumps(value, default=str).encode() if value is not None else b""


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = tmp_path_factory.mktemp("fuzz") / "m.duckdb"
    with live_server(Settings(store=str(db), rate=0, admin_token="fuzz-token", max_body=200_000)) as url:
        yield url


ROUTES = [
    ("POST", "/report"),
    ("POST", "/report/{report_id}"),
    ("POST", "/report/{report_id}/close"),
    ("POST", "/api/v1/measurements"),
    ("GET", "/api/v1/measurements"),
    ("GET", "/api/v1/measurement/{measurement_uid}"),
    ("DELETE", "/api/v1/measurement/{measurement_uid}"),
    ("GET", "/api/v1/aggregation"),
    ("POST", "/api/v1/admin/reanalyse"),
]


@pytest.fixture(scope="module")
def api_schema(base_url: str) -> Any:
    return schemathesis.openapi.from_url(f"{base_url}/openapi.json")


@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode), ids=str)
@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_no_server_errors(api_schema: Any, method: str, path: str, mode: Any) -> None:
    operation = api_schema[path][method]
    try:
        strategy = operation.as_strategy(generation_mode=mode)
    except Exception as exc:  # e.g. nothing negative to generate for a route without inputs
        pytest.skip(f"no {mode} cases for {method} {path}: {type(exc).__name__}")

    @given(case=strategy)
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case: Any) -> None:
        response = case.call(timeout=30)
        assert response.status_code < 500, (
            f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
        )

    try:
        run()
    except Unsatisfiable:
        pytest.skip(f"schemathesis cannot generate {mode} cases for {method} {path} (unconstrained inputs)")


def test_spec_lists_the_routes(base_url: str, tmp_path: Path) -> None:
    import httpx

    paths = httpx.get(f"{base_url}/openapi.json").json()["paths"]
    for p in (
        "/report",
        "/report/{report_id}",
        "/report/{report_id}/close",
        "/api/v1/measurements",
        "/api/v1/measurement/{measurement_uid}",
        "/api/v1/aggregation",
        "/api/v1/admin/reanalyse",
    ):
        assert p in paths
