"""How the outbox reads a collector's answers: when to retry, and why a measurement was refused.

Kept apart from :mod:`~reachwatch.collector.queue`, which decides what to do with them.
"""

from __future__ import annotations

import math

import httpx
import orjson


def retry_after(resp: httpx.Response, default: float = 1.0) -> float:
    """Seconds to wait before the next try: the answer's ``Retry-After`` (seconds), kept within
    50 ms and a minute; ``default`` without one."""
    value = resp.headers.get("retry-after", "")
    try:
        seconds = float(value)
    except ValueError:
        return default
    if math.isnan(seconds):  # "nan" parses, and compares false with everything: no wait at all
        return default
    return min(max(seconds, 0.05), 60.0)


def reason_of(resp: httpx.Response) -> str:
    """What an answer says went wrong, on one line: a reachwatch collector's ``error``, another
    server's short text, or its reason phrase."""
    try:
        answer = orjson.loads(resp.content)
    except orjson.JSONDecodeError:
        answer = None
    if isinstance(answer, dict) and isinstance(answer.get("error"), str):
        return str(answer["error"])[:300]
    # not a reachwatch collector's answer: a proxy's short text as it is, an HTML page by its reason
    # (the whole page made a message of many lines)
    text = resp.text.strip()
    if (
        text
        and "html" not in resp.headers.get("content-type", "")
        and "\n" not in text[:200]
        and text[:200].isprintable()  # not bytes shown as text
    ):
        return text[:200]
    phrase = resp.reason_phrase or "no reason given"
    return f"{phrase} (not a reachwatch collector's answer: is --collector the collector's base URL?)"


#: How a collector that took the connection can cut it while a batch is sent (its early 413 for a
#: body too big, read as a reset), as opposed to being unreachable or never answering (timeouts)
CUT_OFF = (httpx.WriteError, httpx.ReadError, httpx.RemoteProtocolError)


#: the statuses that refuse what was sent; any other 4xx (404, 401, 403, 405, 408, 415...) is
#: about the request (a wrong URL, a proxy) and keeps the measurements queued
LINE_STATUSES = (400, 413, 422)


def batch_line_reason(status: int, line: int, of: int, error: object) -> str:
    """A refusal of one line of a batch: the collector's message less its ``line N:`` (the batch's
    numbering, not the user's file's), the batch's line said apart."""
    text = str(error)
    text = text.removeprefix(f"line {line}: ")
    return f"{status}: {text} (line {line} of {of} sent together)"


def transport_failure(exc: httpx.TransportError) -> str:
    """What went wrong on the way, said even where httpx's exception has no message."""
    text = str(exc).strip()
    if text:
        return f"{type(exc).__name__}: {text}"
    if isinstance(exc, httpx.TimeoutException):
        return f"{type(exc).__name__}: no answer in time"
    return f"{type(exc).__name__}: the connection was closed before the collector answered"


def acknowledged(resp: httpx.Response, sent: int) -> list[str] | None:
    """The uids of a 2xx answer to a batch, one for each of the ``sent`` lines (a collector's
    ``{"measurement_uids": [...]}``), or None if the answer is anything else."""
    try:
        answer = orjson.loads(resp.content)
    except orjson.JSONDecodeError:
        return None
    uids = answer.get("measurement_uids") if isinstance(answer, dict) else None
    if not isinstance(uids, list) or len(uids) != sent or not all(isinstance(u, str) and u for u in uids):
        return None
    return uids
