"""HTTP diff: is the probe's final response the page the control saw? (OONI's rules.)

- body proportion = shorter / longer body length; a match when > 0.7 (both lengths > 0,
  the probe's body not truncated);
- status codes match when equal; when they differ and the control's is not 2xx, no verdict;
- headers match when both responses share at least one *uncommon* header name;
- titles match when no word of 5+ bytes (lower-cased, split on spaces) is in one title only;
- there is a diff unless the status matches and one of body length, headers or title matches.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from reachwatch.observations import ControlHTTP, HTTPTransaction

BODY_PROPORTION_FACTOR: Final = 0.7

# OONI's list of header names too common to tell two servers apart
COMMON_HEADERS: Final = frozenset(
    {
        "date",
        "content-type",
        "server",
        "cache-control",
        "vary",
        "set-cookie",
        "location",
        "expires",
        "x-powered-by",
        "content-encoding",
        "last-modified",
        "accept-ranges",
        "pragma",
        "x-frame-options",
        "etag",
        "x-content-type-options",
        "age",
        "via",
        "p3p",
        "x-xss-protection",
        "content-language",
        "cf-ray",
        "strict-transport-security",
        "link",
        "x-varnish",
    }
)
MIN_WORD_BYTES: Final = 5


@dataclass(slots=True)  # read-only by convention, not frozen: cheaper to build (observations.records)
class HTTPDiff:
    body_proportion: float | None = None
    body_length_match: bool | None = None
    status_code_match: bool | None = None
    headers_match: bool | None = None
    title_match: bool | None = None

    def __init__(
        self,
        body_proportion: float | None = None,
        body_length_match: bool | None = None,
        status_code_match: bool | None = None,
        headers_match: bool | None = None,
        title_match: bool | None = None,
    ) -> None:
        # by hand, so that mypyc compiles it (see observations.records)
        self.body_proportion = body_proportion
        self.body_length_match = body_length_match
        self.status_code_match = status_code_match
        self.headers_match = headers_match
        self.title_match = title_match

    @property
    def differs(self) -> bool:
        if self.status_code_match:
            return not (self.body_length_match or self.headers_match or self.title_match)
        return True


NO_DIFF: Final = HTTPDiff()


def compare(probe: HTTPTransaction, control: ControlHTTP | None) -> HTTPDiff:
    """The diff values of a probe response against the control's (None where undecidable)."""
    if control is None or control.status_code is None:
        return NO_DIFF
    length, title = probe.length_and_title()
    ctrl_code, ctrl_length = control.status_code, control.body_length or 0
    proportion = None
    if length and length > 0 and ctrl_length > 0 and not probe.body_is_truncated:
        proportion = min(length, ctrl_length) / max(length, ctrl_length)
    status = None
    if probe.status_code is not None:
        status = probe.status_code == ctrl_code
        if not status and ctrl_code // 100 != 2:
            status = None
    return HTTPDiff(
        proportion,
        None if proportion is None else proportion > BODY_PROPORTION_FACTOR,
        status,
        not _uncommon(probe.header_keys).isdisjoint(_uncommon(control.header_keys)),
        not _long_words(title) ^ _long_words(control.title),
    )


@lru_cache(maxsize=4096)  # the same few header sets recur (see observations.text.header_keys)
def _uncommon(names: frozenset[str]) -> frozenset[str]:
    return names - COMMON_HEADERS


@lru_cache(maxsize=4096)  # a site's title recurs in every measurement of it
def _long_words(title: str) -> frozenset[str]:
    if not title:
        return frozenset()
    return frozenset(
        word.lower()
        for word in title.split(" ")
        if len(word) >= MIN_WORD_BYTES or (not word.isascii() and len(word.encode()) >= MIN_WORD_BYTES)
    )
