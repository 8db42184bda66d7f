"""The control helper's HTTP face: POST / with an OONI test-helper request (Starlette + uvicorn)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from reachwatch.control.measure import ThRequest, control_config, parse_endpoint, th_measure
from reachwatch.control.safety import MAX_REQUEST_BYTES, MAX_REQUEST_ENDPOINTS, Safety
from reachwatch.probe.config import ProbeConfig
from reachwatch.probe.dns import retry_lost_queries
from reachwatch.runtime import SERVER_OPEN_FILES, raise_open_files, settle_gc
from reachwatch.urls import split_url


class BadRequest(ValueError):
    """A malformed test-helper request: 400 with this message."""


def parse_request(raw: bytes) -> ThRequest:
    try:
        body = orjson.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    url = body.get("http_request")
    if not isinstance(url, str):
        raise BadRequest("http_request must be the URL to measure (a string)")
    _, problem = split_url(url)
    if problem is not None:
        raise BadRequest(f"http_request: {problem}")
    endpoints = body.get("tcp_connect", [])
    if not isinstance(endpoints, list) or not all(isinstance(e, str) for e in endpoints):
        raise BadRequest("tcp_connect must be a list of 'ip:port' strings")
    if len(endpoints) > MAX_REQUEST_ENDPOINTS:
        raise BadRequest(f"tcp_connect has {len(endpoints)} endpoints, at most {MAX_REQUEST_ENDPOINTS}")
    headers = body.get("http_request_headers", {})
    if not isinstance(headers, dict):
        raise BadRequest("http_request_headers must be an object")
    try:
        parsed = [parse_endpoint(e) for e in endpoints]
    except ValueError as exc:
        raise BadRequest(f"tcp_connect: {exc}") from None
    return ThRequest(url=url, endpoints=list(dict.fromkeys(parsed)))


async def _read_capped(request: Request) -> bytes | None:
    """The body, or None when it is larger than MAX_REQUEST_BYTES (read no further)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
        return None
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > MAX_REQUEST_BYTES:
            return None
    return bytes(chunks)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def handle(request: Request) -> Response:
    raw = await _read_capped(request)
    if raw is None:
        return _error(413, f"the request is larger than {MAX_REQUEST_BYTES} bytes")
    try:
        th_request = parse_request(raw)
    except BadRequest as exc:
        return _error(400, str(exc))
    cfg: ProbeConfig = request.app.state.cfg
    answer = await th_measure(th_request, cfg)
    if _asks_for_its_address(raw) and request.client is not None:
        # a reachwatch probe asks where it is seen from, to scrub that address from its own
        # measurements before they leave it (OONI's probes do so with their own lookup); never
        # told unasked, so that a probe that keeps the answer whole does not keep its address
        answer["x_probe_address"] = request.client.host
    return Response(orjson.dumps(answer), media_type="application/json")


def _asks_for_its_address(raw: bytes) -> bool:
    """Whether the request (already parsed once: valid) has ``"x_probe_address": true``."""
    return b'"x_probe_address"' in raw and orjson.loads(raw).get("x_probe_address") is True


def make_app(*, lab: bool = False, ca_file: Path | None = None) -> Starlette:
    """The ASGI app; ``lab`` allows bogon targets (loopback, private, TEST-NET)."""
    app = Starlette(routes=[Route("/", handle, methods=["POST"])])
    cfg = control_config(ProbeConfig(ca_file=ca_file, refuse_address=Safety(lab=lab).refuse))
    cfg.ssl_context  # noqa: B018  (load the trust anchors at start-up)
    app.state.cfg = cfg
    return app


def serve(host: str, port: int, *, lab: bool = False, ca_file: Path | None = None) -> None:
    import uvicorn

    app = make_app(lab=lab, ca_file=ca_file)
    settle_gc()
    retry_lost_queries(app.state.cfg.timeouts.dns)  # a lost datagram must not be the control's failure
    raise_open_files(SERVER_OPEN_FILES)  # a connection per probe, and the helper's own fetches
    options: dict[str, Any] = {"access_log": False, "log_level": "warning", "lifespan": "off"}
    try:
        import uvloop  # noqa: F401

        options["loop"] = "uvloop"
    except ImportError:
        pass
    uvicorn.run(app, host=host, port=port, **options)
