"""How the collector's app answers what goes wrong outside its own :class:`ApiError` s: FastAPI's
422s and Starlette's 404/405 in the shape every other 4xx has (an ``error`` message), and a bug
as a 500 whose log names only the exception's type (a request carries the submitter's address)."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Match

from reachwatch.collector.http import ApiError, error_response, json_response

log = logging.getLogger(__name__)


def add_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, lambda _r, exc: error_response(exc))
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _internal)


async def _invalid(_request: Request, exc: Exception) -> Response:
    """FastAPI's 422 for a bad parameter, with the ``error`` message every other 4xx has."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    message = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in errors[:5]
    )
    return json_response({"error": message or "invalid request", "detail": jsonable_encoder(errors)}, 422)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 4xx (no such route: 404, a method the route lacks: 405) with the ``error``
    message every other 4xx has (its ``detail`` kept, as FastAPI gives it). A 405's ``Allow``
    names the methods of every route of the path: Starlette's named only the first route's
    (``Allow: POST`` for /api/v1/measurements, which answers GET too)."""
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers) if exc.headers else {}
    if exc.status_code == 405:
        methods: set[str] = set()
        for route in request.app.router.routes:
            match, _ = route.matches({**request.scope, "method": "GET"})
            if match != Match.NONE and isinstance(route, APIRoute):
                methods |= route.methods or set()
        if methods:
            headers["Allow"] = ", ".join(sorted(methods))
    return json_response({"error": exc.detail, "detail": exc.detail}, exc.status_code, headers or None)


async def _internal(request: Request, exc: Exception) -> Response:
    if isinstance(exc, ClientDisconnect):  # the client left mid-body: nobody to answer, nothing wrong
        return Response(status_code=400)
    # never log the request (it carries the submitter's address): the exception type only
    log.error("internal error on %s %s: %s", request.method, request.url.path, type(exc).__name__)
    return json_response({"error": "internal error"}, 500)
