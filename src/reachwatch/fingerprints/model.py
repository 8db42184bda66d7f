"""What a blocking fingerprint is, and what matching one against a measurement yields.

The fields follow ooni/blocking-fingerprints (``Readme.md`` there): a fingerprint names a pattern,
where to look for it (``dns``, ``body`` or ``header.<lowercase name>``) and how to compare
(``full``, ``prefix``, ``contains``, ``regexp``).
"""

from __future__ import annotations

from dataclasses import dataclass

PATTERN_TYPES = frozenset({"full", "prefix", "contains", "regexp"})

#: The CSV columns, in the upstream order. ``name``, ``location_found``, ``pattern_type`` and
#: ``pattern`` are required; the others may be absent (users' own files) and default to empty.
CSV_COLUMNS = (
    "name",
    "scope",
    "other_names",
    "location_found",
    "pattern_type",
    "pattern",
    "confidence_no_fp",
    "expected_countries",
    "source",
    "exp_url",
    "notes",
)
REQUIRED_COLUMNS = ("name", "location_found", "pattern_type", "pattern")

#: Scopes whose match does *not* confirm blocking: ``fp`` marks known false positives (a parked
#: domain, a web server's default page) and ``vbw`` a vague blocking word ("Access Denied") that
#: real sites use too. Every other scope (nat, isp, prod, inst, ...) confirms.
NON_CONFIRMING_SCOPES = frozenset({"fp", "vbw"})


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """One row of a fingerprint CSV."""

    name: str
    location: str  # "dns" | "body" | "header.<lowercase name>"
    pattern_type: str  # one of PATTERN_TYPES
    pattern: str
    scope: str = ""
    other_names: str = ""
    confidence_no_fp: int | None = None
    expected_countries: tuple[str, ...] = ()
    source: str = ""
    exp_url: str = ""
    notes: str = ""

    @property
    def header_name(self) -> str | None:
        """The lowercase header name for ``header.*`` fingerprints, else None."""
        return self.location[len("header.") :] if self.location.startswith("header.") else None

    @property
    def confirms_blocking(self) -> bool:
        return self.scope not in NON_CONFIRMING_SCOPES


@dataclass(frozen=True, slots=True)
class FingerprintMatch:
    """A fingerprint found in one measurement.

    ``expected_country`` is True when the probe's country is in the fingerprint's expected
    countries, False when it is not, None when the fingerprint lists none. ``where`` points at
    the first place it was found, e.g. ``requests[0].response.body`` or ``queries[1].answers``.
    """

    name: str
    scope: str
    location: str
    pattern_type: str
    confirms_blocking: bool
    expected_country: bool | None
    where: str

    @classmethod
    def of(cls, fp: Fingerprint, *, probe_cc: str | None, where: str) -> FingerprintMatch:
        expected: bool | None = None
        if fp.expected_countries:
            expected = (probe_cc or "").upper() in fp.expected_countries
        return cls(
            name=fp.name,
            scope=fp.scope,
            location=fp.location,
            pattern_type=fp.pattern_type,
            confirms_blocking=fp.confirms_blocking,
            expected_country=expected,
            where=where,
        )


def is_confirmed(matches: list[FingerprintMatch]) -> bool:
    """True when any match confirms blocking (a known blockpage or injected answer)."""
    return any(m.confirms_blocking for m in matches)
