"""One URL, redirects included: hops measured in turn, their observations merged into test_keys."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urljoin, urlsplit

from reachwatch.failures import MeasurementFailure
from reachwatch.probe.config import MAX_REDIRECTS, ProbeConfig
from reachwatch.probe.control_client import ControlClient
from reachwatch.probe.hop import Hop, measure_hop
from reachwatch.probe.trace import Trace
from reachwatch.urls import host_problem, split_url

REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})


def next_url(current: str, location: str) -> str:
    """Where a redirect points, or a MeasurementFailure naming why we cannot go there."""
    try:
        target = urljoin(current, location.strip())
        parts = urlsplit(target)
    except ValueError:  # e.g. an unclosed '[' in the host
        raise MeasurementFailure("http_unexpected_redirect_url", location) from None
    if parts.scheme not in ("http", "https"):
        raise MeasurementFailure("http_unexpected_redirect_url", target)
    if not parts.hostname or host_problem(parts.hostname) is not None:  # e.g. 'a..b', 'a b'
        raise MeasurementFailure("http_invalid_redirect_location_host", target)
    _, problem = split_url(target)
    if problem is not None:  # a bad port, control characters
        raise MeasurementFailure("http_unexpected_redirect_url", problem)
    return target.partition("#")[0]


async def follow(
    url: str,
    cfg: ProbeConfig,
    trace: Trace,
    control: ControlClient | None,
    *,
    max_redirects: int = MAX_REDIRECTS,
    resolved: tuple[list[str], str | None] | None = None,
) -> list[Hop]:
    """Measure ``url`` and each redirect it leads to (at most ``max_redirects`` of them).

    ``resolved``: the first hop's addresses and DNS failure when the caller already looked them up.
    """
    hops: list[Hop] = []
    current: str | None = url
    while current is not None:
        hop = await measure_hop(current, len(hops), cfg, trace, control, resolved=None if hops else resolved)
        hops.append(hop)
        current = None
        result = hop.http
        if result is None or result.failure or result.status not in REDIRECT_CODES or not result.location:
            break
        try:
            target = next_url(hop.url, result.location)
            if len(hops) > max_redirects:
                raise MeasurementFailure("http_too_many_redirects")
        except MeasurementFailure as exc:
            result.failure = hop.failure = exc.failure
            assert hop.request is not None
            hop.request["failure"] = exc.failure
            break
        current = target
    return hops


def _system_dns_failure(hop: Hop) -> str | None:
    for q in hop.queries:
        if q["engine"] == "getaddrinfo":
            return q["failure"]
    return None


async def measure_url(url: str, cfg: ProbeConfig, control: ControlClient | None) -> dict[str, Any]:
    """The web_connectivity test_keys for one URL (verdict keys are added by the caller)."""
    trace = Trace()
    hops: list[Hop] = []
    try:
        hops = await follow(url, cfg, trace, control)
    finally:
        duplicates = [entry for hop in hops if hop.udp is not None for entry in hop.udp.close()]
    keys: dict[str, Any] = {
        "queries": [q for hop in hops for q in hop.queries],
        "x_dns_duplicate_responses": duplicates,
        "tcp_connect": [e for hop in hops for e in hop.tcp_connect],
        "tls_handshakes": [e for hop in hops for e in hop.tls_handshakes],
        "requests": [hop.request for hop in reversed(hops) if hop.request is not None],
        # OONI's summary keys: the system resolver's failure for the URL, and why the chain ended
        "dns_experiment_failure": _system_dns_failure(hops[0]) if hops else None,
        "http_experiment_failure": hops[-1].failure if hops else None,
        "control": None,
        "control_failure": None,
        "x_controls": [],
    }
    if control is None:
        keys["control_failure"] = "no control helper configured"
        return keys
    answers = await asyncio.gather(*(hop.control for hop in hops if hop.control is not None))
    for hop, (answer, failure) in zip(hops, answers, strict=True):
        if hop.depth == 0:
            keys["control"], keys["control_failure"] = answer, failure
        else:
            keys["x_controls"].append({"url": hop.url, "control": answer, "control_failure": failure})
    return keys
