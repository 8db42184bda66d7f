"""Small, defensive readers for the loose JSON shapes found in measurements."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Final, TypeGuard
from urllib.parse import urlsplit

# OONI's title extractor (measurexlite.WebGetTitle): case-insensitive, up to 512 chars
_TITLE: Final = re.compile(r"<title>([^<]{1,512})</title>", re.IGNORECASE)
MALFORMED: Final = "unknown_failure: malformed"
_EMPTY: Final[Mapping[str, Any]] = MappingProxyType({})
# dict first: JSON gives dicts, and the ABC check of Mapping alone is ~5x slower
_MAPS: Final = (dict, Mapping)


def as_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def as_failure(value: Any) -> str | None:
    """None for success; a string failure as is; anything else is a malformed failure."""
    if value is None or isinstance(value, str):
        return value or None
    return MALFORMED


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, _MAPS) else _EMPTY


def is_map(value: Any) -> TypeGuard[Mapping[str, Any]]:
    return isinstance(value, _MAPS)


NO_TAGS: Final[tuple[int | None, bool | None]] = (None, None)


def tag_values(tags: Any) -> tuple[int | None, bool | None]:
    """(depth, fetch_body) from OONI tags like ``["depth=1", "fetch_body=true"]``."""
    if not isinstance(tags, list) or not tags:
        return NO_TAGS
    try:  # the same few tag lists recur in every measurement: parse each once
        return cached_tag_values(tuple(tags))
    except TypeError:  # an unhashable (malformed) tag
        return _tag_values(tags)


def _tag_values(tags: Iterable[Any]) -> tuple[int | None, bool | None]:
    depth: int | None = None
    fetch: bool | None = None
    for tag in tags:
        if not isinstance(tag, str):
            continue
        if tag.startswith("depth="):
            value = tag[6:]
            depth = int(value) if value.isdigit() else depth
        elif tag.startswith("fetch_body="):
            fetch = tag[11:] == "true"
    return depth, fetch


#: ``tag_values`` of a tuple of tags, for hot loops (TypeError when a tag is unhashable)
cached_tag_values: Final = lru_cache(maxsize=1024)(_tag_values)


@lru_cache(maxsize=4096)
def norm_host(host: str) -> str:
    """Lower-case, no trailing dot, IDNA (punycode) when possible."""
    host = host.strip().rstrip(".").lower()
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


@lru_cache(maxsize=4096)
def url_parts(url: str | None) -> tuple[str, str]:
    """(scheme, normalised host) of a URL; empty strings when it does not parse."""
    if not url:
        return "", ""
    try:
        parts = urlsplit(url)
        return parts.scheme.lower(), norm_host(parts.hostname or "")
    except ValueError:
        return "", ""


def body_bytes_and_text(body: Any) -> tuple[int | None, str]:
    """(length in bytes, text to search) of a response body: a str or {format: base64, data}."""
    if isinstance(body, str):
        return (len(body) if body.isascii() else len(body.encode("utf-8", "replace"))), body
    if isinstance(body, Mapping) and body.get("format") == "base64":
        data = body.get("data")
        if not isinstance(data, str):
            return None, ""
        try:
            raw = base64.b64decode(data, validate=False)
        except (binascii.Error, ValueError):
            return None, ""
        return len(raw), raw.decode("latin-1")
    return None, ""


def title_of(text: str) -> str:
    match = _TITLE.search(text)
    return match.group(1) if match else ""


def header_keys(headers: Any, headers_list: Any = None) -> frozenset[str]:
    """Lower-case header names from a ``headers`` map, else from ``headers_list`` pairs."""
    if isinstance(headers, _MAPS) and headers:
        return _names(tuple(headers))  # map keys are hashable
    if isinstance(headers_list, list):
        return frozenset(
            pair[0].lower()
            for pair in headers_list
            if isinstance(pair, list) and pair and isinstance(pair[0], str)
        )
    return frozenset()


@lru_cache(maxsize=4096)  # a server sends the same header names in every response
def _names(keys: tuple[Any, ...]) -> frozenset[str]:
    return frozenset([k.lower() for k in keys if isinstance(k, str)])
