"""Small HTTP helpers shared by the routes: bounded body reads, JSON answers, API errors.

:func:`read_asgi_body` and :func:`send_json` speak ASGI directly, for the write lane
(``app.CollectorApp``) that answers the hot write routes without FastAPI's per-request machinery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from reachwatch.collector import content_encoding
from reachwatch.collector.deadlines import for_loop
from reachwatch.collector.ratelimit import network_key
from reachwatch.collector.submitter import submitter_of

log = logging.getLogger(__name__)
_JSON_HEADERS = [(b"content-type", b"application/json")]
#: Seconds a request body may stay without a new byte before the request is answered 408: a client
#: that declares more than it sends, and keeps the connection open, no longer holds it for ever
BODY_IDLE_TIMEOUT = 60.0


class ApiError(Exception):
    """An answer other than 2xx, with a clear message (never the submitter's address)."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.extra = extra


#: How the routes that read the store (and the admin ones) document a failing store in OpenAPI
STORE_FAILING: dict[int | str, dict[str, Any]] = {
    503: {"description": "the store cannot be read now (ClickHouse down, an I/O error): retry later"}
}


@contextlib.contextmanager
def store_errors(action: str) -> Iterator[None]:
    """A store that fails while a route reads it (ClickHouse down, an I/O error) is a 503 to retry,
    as a failed write is, not a 500; the store's own message goes to the log, for the operator."""
    try:
        yield
    except ApiError:
        raise
    except Exception as exc:
        log.error("store %s failed: %s: %.300s", action, type(exc).__name__, exc)
        raise ApiError(
            503,
            f"the collector could not {action} its store (storage error); retry later",
            headers={"Retry-After": "5"},
        ) from None


def _idle() -> ApiError:
    return ApiError(
        408, f"no part of the request body arrived for {BODY_IDLE_TIMEOUT:g} s: send the whole body"
    )


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json", headers=headers)


def error_response(exc: ApiError) -> Response:
    return json_response({"error": exc.message, **exc.extra}, exc.status, exc.headers)


async def read_body(request: Request, limit: int) -> bytes:
    """:func:`read_asgi_body` of a Starlette request."""
    return await read_asgi_body(request.scope, request.receive, limit)


class InexactNumber(orjson.JSONDecodeError):
    """JSON that orjson reads, but not exactly: an integer past 64 bits (measurement_json)."""


def bad_json(what: str, exc: orjson.JSONDecodeError, text: bytes | memoryview) -> str:
    """What is wrong with ``text`` (a body, or a line of one) and where. orjson checks UTF-8 before
    parsing and then says only "surrogates not allowed" at "line 1 column 1" wherever the bad byte
    is: that place is found here (the error path only, never a good body's)."""
    if isinstance(exc, InexactNumber):
        return f"{what}: {exc.msg}"
    raw = bytes(text)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        line = raw.count(b"\n", 0, bad.start) + 1
        column = bad.start - (raw.rfind(b"\n", 0, bad.start) + 1) + 1
        return (
            f"{what} is not valid UTF-8: byte 0x{raw[bad.start]:02x} at line {line} column {column} "
            f"(byte {bad.start}); send JSON text encoded as UTF-8"
        )
    return f"{what} is not valid JSON (UTF-8): {exc}"


def parse_json(
    body: bytes, *, what: str = "request body", parse: Callable[[bytes], Any] | None = None
) -> Any:
    """``body`` parsed (by ``parse``, or ``orjson.loads``); 400 with where it is not JSON."""
    try:
        return orjson.loads(body) if parse is None else parse(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, bad_json(what, exc, body)) from None


async def read_asgi_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The request body, on bare ASGI messages: 413 as soon as it grows past ``limit`` bytes (with
    or without Content-Length), 408 when it stops arriving. A compressed one (``Content-Encoding``:
    :mod:`~reachwatch.collector.content_encoding`) is decompressed, held to ``limit`` too (413); 400
    if it is not valid in its coding, 415 for a coding not taken."""
    applied: list[str] = []
    for name, value in scope["headers"]:
        if name == b"content-length":
            if value.isdigit() and int(value) > limit:
                raise ApiError(413, f"request body larger than {limit} bytes")
        elif name == b"content-encoding":
            try:
                applied += content_encoding.codings(value)
            except content_encoding.Unsupported as exc:
                raise ApiError(415, str(exc)) from None
    if len(applied) > content_encoding.MAX_CODINGS:  # each a pass over the whole body
        raise ApiError(415, f"{len(applied)} codings one over the other: send the body compressed once")
    held = _Held(limit, _sender(scope))
    try:
        body = await _read(receive, limit, held)
        if not applied:
            return body
        try:
            if len(body) < _DECODED_INLINE:
                return content_encoding.decoded(body, applied, limit)
            # a big body off the loop: zstd and zlib let go of the GIL while they decode; what it
            # decodes to is held as much as the bytes that came (a bomb: 16 MB from a few KB)
            held.add(limit)
            return await asyncio.to_thread(content_encoding.decoded, body, applied, limit)
        except content_encoding.TooBig as exc:
            raise ApiError(413, str(exc)) from None
        except content_encoding.Invalid as exc:
            raise ApiError(400, str(exc)) from None
    finally:
        held.release()


#: The bytes of request bodies the collector holds while they arrive and are decoded, all requests
#: together: past it, a request is answered 503 with Retry-After. Without it, 80 connections each
#: sending 16 MB and holding back the last byte took the collector from 188 MB to 1.5 GB (an
#: outside check); the rate limit and --max-pending count measurements, not bytes on their way.
#: At least two bodies of the largest size taken (``--max-body``). One sender (an IPv4 /24, an IPv6
#: /48) holds at most a :data:`SENDER_SHARE` of it: one client filling it (16 uploads of 16 MB, a
#: byte every 20 s to stay within the idle timeout) answered every volunteer 503 (an outside check).
BODY_BUDGET = 256 << 20
SENDER_SHARE = 4
_held_bytes = 0
_held_by: dict[str, int] = {}


def _sender(scope: Scope) -> str:
    """The sender a body's bytes are counted for: the submitter's /24 or /48, as the rate limit
    keys an unattributed one (the databases are not read for bytes still arriving)."""
    return network_key(None, submitter_of(scope))


class _Held:
    """One request's share of :data:`BODY_BUDGET`, given back by :meth:`release`."""

    __slots__ = ("budget", "sender", "share", "size")

    def __init__(self, limit: int, sender: str) -> None:
        self.size = 0
        self.budget = max(BODY_BUDGET, 2 * limit)
        self.share = max(self.budget // SENDER_SHARE, limit)  # one body of the largest size at least
        self.sender = sender

    def add(self, size: int) -> None:
        global _held_bytes
        mine = _held_by.get(self.sender, 0)
        if _held_bytes + size > self.budget or mine + size > self.share:
            raise ApiError(
                503,
                "the collector is receiving as many bytes as it holds at once: send this again shortly",
                headers={"Retry-After": "1"},
            )
        _held_bytes += size
        _held_by[self.sender] = mine + size
        self.size += size

    def release(self) -> None:
        global _held_bytes
        if self.size:
            _held_bytes -= self.size
            left = _held_by.get(self.sender, 0) - self.size
            if left > 0:
                _held_by[self.sender] = left
            else:
                _held_by.pop(self.sender, None)
        self.size = 0


def held_bytes() -> int:
    """The bytes of request bodies held now (:data:`BODY_BUDGET`)."""
    return _held_bytes


def bodies_full() -> bool:
    """Whether the bytes held leave less than a tenth of :data:`BODY_BUDGET` (health says busy)."""
    return _held_bytes * 10 > BODY_BUDGET * 9


#: Compressed bodies up to this size are decoded on the event loop (a median measurement's zstd,
#: ~1.4 KB, in a few us); bigger ones on a thread
_DECODED_INLINE = 64 << 10


async def _read(receive: Receive, limit: int, held: _Held) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await _receive(receive)
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"request body larger than {limit} bytes")
        held.add(len(chunk))
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _receive(receive: Receive) -> Message:
    """``receive()``, or a 408 when nothing arrives for :data:`BODY_IDLE_TIMEOUT`: a deadline of
    the loop's sweep (:mod:`~reachwatch.collector.deadlines`), not a timer per call (``asyncio.timeout``
    cost ~4 us a call on the write lane's hot path, a timer handle ~2.2)."""
    task = asyncio.current_task()
    assert task is not None
    waits = for_loop(task.get_loop(), "body", _stalled)
    waits.start(task, BODY_IDLE_TIMEOUT)
    try:
        return await receive()
    except asyncio.CancelledError as exc:
        if task in _cancelled_stalled:
            _cancelled_stalled.discard(task)
            if task.uncancel() == 0:  # ours, and no one else's
                raise _idle() from None
        elif STOPPING in str(exc) and task.uncancel() == 0:
            # uvicorn's stop gave up waiting for this upload (server.GRACEFUL_SHUTDOWN): answered,
            # not a bare 500 and a traceback
            raise ApiError(
                503,
                "the collector is stopping: nothing of this request was stored; send it again",
                headers={"Retry-After": "5"},
            ) from None
        raise
    finally:
        waits.stop(task)


#: what uvicorn cancels a request's task with when its stop has waited long enough
STOPPING = "timeout graceful shutdown exceeded"

#: tasks cancelled because their body stopped arriving (:func:`_stalled`), until they see it
_cancelled_stalled: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()


def _stalled(task: asyncio.Task[Any]) -> None:
    _cancelled_stalled.add(task)
    task.cancel()


async def send_json(
    send: Send, body: bytes, status: int = 200, headers: dict[str, str] | None = None
) -> None:
    """Answer with ``body`` (JSON, already encoded) in two ASGI messages."""
    raw = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())]
    if headers:
        raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def send_error(send: Send, exc: ApiError) -> None:
    await send_json(send, orjson.dumps({"error": exc.message, **exc.extra}), exc.status, exc.headers)
