"""Find known blocking fingerprints in a web_connectivity measurement.

Looked at: every DNS answer (A/AAAA address, CNAME target) of ``test_keys.queries`` and
``test_keys.x_dns_duplicate_responses``, and every HTTP response of ``test_keys.requests`` (each
hop of a redirect chain): its headers (names compared case-insensitively) and its body.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from reachwatch.fingerprints.model import Fingerprint, FingerprintMatch
from reachwatch.fingerprints.patterns import PatternSet

#: Bodies are searched up to this many characters. Blockpages are small (the largest seen in the
#: shared OONI sample is 32 KB), OONI probes truncate bodies at 128 KiB anyway, and scanning the
#: whole 500 KB of a real home page would cost far more than the whole rest of the analysis.
DEFAULT_BODY_WINDOW = 65536


def body_text(response: Mapping[str, Any] | None) -> str:
    """A response body as text: OONI keeps UTF-8 bodies as str, others as ``{format: base64, data}``.

    Non-UTF-8 bytes become U+FFFD (as OONI's fastpath sees them); a malformed base64 body is empty.
    """
    if not response:
        return ""
    body = response.get("body")
    if isinstance(body, str):
        return body
    if isinstance(body, Mapping) and body.get("format") == "base64":
        try:
            raw = base64.b64decode(body.get("data") or "", validate=False)
        except (binascii.Error, ValueError):
            return ""
        return raw.decode("utf-8", "replace")
    return ""


def response_headers(response: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(name, value) pairs: from ``headers_list`` when present (keeps repeated headers), else ``headers``."""
    pairs = response.get("headers_list")
    if isinstance(pairs, list) and pairs:
        for pair in pairs:
            if isinstance(pair, list | tuple) and len(pair) == 2 and isinstance(pair[1], str):
                yield str(pair[0]), pair[1]
        return
    headers = response.get("headers")
    if isinstance(headers, Mapping):
        for name, value in headers.items():
            if isinstance(value, str):
                yield str(name), value
            elif isinstance(value, list):
                yield from ((str(name), v) for v in value if isinstance(v, str))


def json_list(value: Any) -> list[Any]:
    """``value`` if it is a JSON array, else empty (measurement content is untrusted)."""
    return value if isinstance(value, list) else []


def dns_answers(test_keys: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, value) for every address or CNAME target in the DNS queries and duplicate responses."""
    for key in ("queries", "x_dns_duplicate_responses"):
        for i, query in enumerate(json_list(test_keys.get(key))):
            if not isinstance(query, (dict, Mapping)):  # dict first: the ABC check costs more
                continue
            where = None
            for answer in json_list(query.get("answers")):
                if isinstance(answer, (dict, Mapping)):
                    value = answer.get("ipv4") or answer.get("ipv6") or answer.get("hostname")
                    if isinstance(value, str) and value:
                        where = where or f"{key}[{i}].answers"
                        yield where, value


def normalise_dns(value: str) -> str:
    """Lowercase, no trailing dot, IPv6 in its compressed form."""
    value = value.strip().lower().rstrip(".")
    if ":" in value:
        try:
            return ipaddress.IPv6Address(value).compressed
        except ValueError:
            return value
    return value


class FingerprintMatcher:
    """All fingerprints compiled once; :meth:`match` then costs tens of microseconds."""

    def __init__(
        self, fingerprints: Iterable[Fingerprint], *, body_window: int | None = DEFAULT_BODY_WINDOW
    ) -> None:
        fps = list(fingerprints)
        self.body_window = body_window
        self._dns = PatternSet((f for f in fps if f.location == "dns"), normalise=normalise_dns)
        self._body = PatternSet(f for f in fps if f.location == "body")
        by_header: dict[str, list[Fingerprint]] = {}
        for fp in fps:
            if fp.header_name:
                by_header.setdefault(fp.header_name, []).append(fp)
        self._headers = {name: PatternSet(group) for name, group in by_header.items()}
        self.size = len(fps)

    def match_dns(self, value: str) -> list[Fingerprint]:
        return self._dns.search(normalise_dns(value)) if len(self._dns) else []

    def match_body(self, body: str) -> list[Fingerprint]:
        if not body or not len(self._body):
            return []
        if self.body_window is not None and len(body) > self.body_window:
            body = body[: self.body_window]
        return self._body.search(body)

    def match_header(self, name: str, value: str) -> list[Fingerprint]:
        patterns = self._headers.get(name.lower())
        return patterns.search(value) if patterns is not None else []

    def match(self, measurement: Mapping[str, Any]) -> list[FingerprintMatch]:
        """Every fingerprint found in the measurement, once each (at the first place it is seen)."""
        test_keys = measurement.get("test_keys")
        if not isinstance(test_keys, Mapping):
            return []
        probe_cc = measurement.get("probe_cc")
        probe_cc = probe_cc if isinstance(probe_cc, str) else None
        out: dict[tuple[str, str], FingerprintMatch] = {}

        def add(found: list[Fingerprint], where: str) -> None:
            for fp in found:
                if (fp.name, fp.location) not in out:
                    out[fp.name, fp.location] = FingerprintMatch.of(fp, probe_cc=probe_cc, where=where)

        if len(self._dns):
            for where, value in dns_answers(test_keys):
                add(self.match_dns(value), where)
        for i, request in enumerate(json_list(test_keys.get("requests"))):
            response = request.get("response") if isinstance(request, Mapping) else None
            if not isinstance(response, Mapping):
                continue
            if self._headers:
                for name, value in response_headers(response):
                    found = self.match_header(name, value)
                    if found:
                        add(found, f"requests[{i}].response.headers.{name.lower()}")
            add(self.match_body(body_text(response)), f"requests[{i}].response.body")
        return list(out.values())
