"""Property-based fuzzing of every route from the OpenAPI spec (schemathesis): never a 5xx.

Default: 25 cases per route and mode (positive, negative): a few hundred in all. The measurement
submissions are fuzzed a second time with the id of a report the collector opened (a fuzzed id is a
404 before the body is read). ``REACHWATCH_FUZZ_EXAMPLES=10000`` for the long run (per route).
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
SENT = [0]  # requests sent by this module's fuzzing, all routes


@pytest.fixture(scope="module", autouse=True)
def _say_how_many() -> Iterator[None]:
    yield
    print(f"\nfuzz: {SENT[0]} requests sent")  # shown with -s; any 5xx fails its test


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


@pytest.fixture(scope="module")
def open_report(base_url: str) -> str:
    import httpx

    from collector.test_app import OPEN

    return str(httpx.post(f"{base_url}/report", json=OPEN).json()["report_id"])


@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode), ids=str)
@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_no_server_errors(api_schema: Any, method: str, path: str, mode: Any) -> None:
    _fuzz(api_schema, method, path, mode)


@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode), ids=str)
@pytest.mark.parametrize("path", ["/report/{report_id}", "/report/{report_id}/close"])
def test_no_server_errors_on_an_open_report(api_schema: Any, open_report: str, path: str, mode: Any) -> None:
    """The same with the report id of a report this collector opened: a fuzzed one is a 404 before
    its body is read, so without this the measurement submissions would never be fuzzed."""
    _fuzz(api_schema, "POST", path, mode, report_id=open_report)


def _fuzz(api_schema: Any, method: str, path: str, mode: Any, report_id: str | None = None) -> None:
    operation = api_schema[path][method]
    try:
        strategy = operation.as_strategy(generation_mode=mode)
    except Exception as exc:  # e.g. nothing negative to generate for a route without inputs
        pytest.skip(f"no {mode} cases for {method} {path}: {type(exc).__name__}")

    @given(case=strategy)
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case: Any) -> None:
        if report_id is not None:
            case.path_parameters = {**(case.path_parameters or {}), "report_id": report_id}
        response = case.call(timeout=30)
        SENT[0] += 1
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


def test_every_ref_in_the_spec_resolves(base_url: str) -> None:
    """A ``$ref`` to nowhere (a model's ``#/$defs/...`` embedded as is) leaves clients and the fuzzer
    without the body's schema: they then sent no body at all to ``POST /report/{report_id}``."""
    import httpx

    spec = httpx.get(f"{base_url}/openapi.json").json()

    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    found = list(refs(spec))
    assert found
    for ref in found:
        assert ref.startswith("#/"), ref
        node: Any = spec
        for part in ref[2:].split("/"):
            assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
            node = node[part]
    body = spec["paths"]["/report/{report_id}"]["post"]["requestBody"]["content"]["application/json"]
    assert "measurement_start_time" in json.dumps(body["schema"])


def _past_64_bits(value: Any) -> bool:
    """An integer past 64 bits anywhere in ``value``: refused with a 400 (it would be stored
    rounded; tests/collector/test_bad_input.py), which a JSON schema cannot say of a measurement's
    free-form members."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return not -(2**63) <= value < 2**64
    if isinstance(value, dict):
        return any(_past_64_bits(v) for v in value.values())
    if isinstance(value, list):
        return any(_past_64_bits(v) for v in value)
    return False


def test_a_batch_of_one_from_the_spec_is_stored(api_schema: Any, base_url: str) -> None:
    """The batch route declared only application/x-ndjson, a string: the schemathesis CLI (no
    serializer for it) and any client of the spec could not send it a measurement. A batch of one
    is also declared as application/json, with the measurement's schema: valid ones are stored."""
    operation = api_schema["/api/v1/measurements"]["POST"]
    assert "measurement_start_time" in json.dumps(operation.definition.raw["requestBody"]["content"])
    strategy = operation.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE)
    statuses: list[int] = []

    @given(case=strategy)
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case: Any) -> None:
        if case.media_type != "application/json" or _past_64_bits(case.body):
            return
        response = case.call(timeout=30)
        SENT[0] += 1
        statuses.append(response.status_code)
        assert response.status_code == 200, (
            f"{case.body!r:.300} -> {response.status_code}: {response.text[:300]}"
        )

    run()
    assert statuses, "no application/json case generated"
