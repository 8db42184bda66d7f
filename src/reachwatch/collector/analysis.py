"""The analysis columns computed at ingest: verdict, domain, category, anomaly/failure flags.

The verdict comes from :func:`reachwatch.verdict.decide`, which never raises; should it ever, the
measurement is still stored, with no verdict (blocking and accessible None).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
import urllib.parse
from typing import Any

from reachwatch.observations.text import norm_host
from reachwatch.verdict import REDIRECT_SUFFIX, decide, other_tests
from reachwatch.verdict.rules import FINGERPRINT_RULES, UNDETERMINED

log = logging.getLogger(__name__)

#: the verdict engine's rule for a measurement of another test than web_connectivity (judged then
#: by :mod:`reachwatch.verdict.other_tests`; this id is never stored)
NOT_JUDGED = "input.not-web-connectivity"


@dataclasses.dataclass(frozen=True, slots=True)
class Verdict:
    blocking: str | None
    accessible: bool | None
    x_technique: str | None
    x_rule: str | None
    anomaly: bool
    failure: bool


def _blocking(value: Any) -> str | None:
    if value is None:
        return None
    if value is False:
        return "false"
    if value is True:
        return "true"
    return str(value)[:64]


VerdictValues = tuple[str | None, bool | None, str | None, str | None, bool, bool]
_interned = functools.lru_cache(maxsize=4096)(Verdict)  # each distinct verdict built once (few exist)


def verdict_values(measurement: dict[str, Any]) -> VerdictValues:
    """(blocking, accessible, x_technique, x_rule, anomaly, failure) as stored: :func:`verdict`
    without its object, for callers that judge many measurements (``reachwatch analyze``)."""
    keys = measurement.get("test_keys")
    if not isinstance(keys, dict):
        keys = {}
    blocking: Any
    accessible: Any
    technique = rule = None
    try:
        v = decide(measurement)
        blocking, accessible = v.blocking, v.accessible
        technique, rule = v.x_technique, v.x_rule
    except Exception as exc:  # a bug in a rule must not lose the measurement
        log.warning("verdict failed on a measurement: %s", type(exc).__name__)
        blocking = accessible = None
    b = _blocking(blocking)
    acc = accessible if isinstance(accessible, bool) else None
    t = str(technique) if technique is not None else None
    r = str(rule) if rule is not None else None
    if r == NOT_JUDGED:
        # another test (telegram, signal, tor...): its own rules (verdict.other_tests, after OONI's
        # fastpath) name the anomaly and the failure; x_rule is the id of the rule that decided
        try:
            other = other_tests.decide(measurement)
        except Exception as exc:  # a bug in a rule must not lose the measurement
            log.warning("verdict failed on a measurement of another test: %s", type(exc).__name__)
            return b, acc, t, None, False, True
        return b, acc, t, other.rule_id, other.anomaly, other.failure
    return (
        b,
        acc,
        t,
        r,
        b not in (None, "false"),
        (b is None and acc is None) or bool(keys.get("control_failure")),
    )


def confirmed_values(values: VerdictValues, where: str) -> VerdictValues:
    """The stored values once a fingerprint confirming blocking was found ``where`` (``dns``,
    ``header`` or ``body``): the fingerprint's rule (:data:`~reachwatch.verdict.rules.FINGERPRINT_RULES`)
    where the rules left the measurement undetermined, else ``values`` as they are."""
    rule = values[3]
    if (
        rule is None
        or rule.removesuffix(REDIRECT_SUFFIX) not in UNDETERMINED
        or where not in FINGERPRINT_RULES
    ):
        return values
    decided = FINGERPRINT_RULES[where]
    return _blocking(decided.blocking), decided.accessible, decided.technique, decided.rule_id, True, False


def verdict(measurement: dict[str, Any]) -> Verdict:
    return _interned(*verdict_values(measurement))


#: A plain http(s) URL whose host needs none of urlsplit's cleaning (whitespace, brackets, userinfo).
_PLAIN_URL = re.compile(r"https?://([A-Za-z0-9.\-]+)(?::[0-9]*)?(?:[/?#]|\Z)")


#: A bare host name or IPv4 address, with or without a port (``google.com``, ``8.8.8.8:53``):
#: the input of tests that measure a host (urlsplit finds no host in it)
_BARE_HOST = re.compile(r"([^\s/:?#@\[\]]*[^\s/:?#@\[\]\d.][^\s/:?#@\[\]]*|[0-9.]+)(?::[0-9]{1,5})?")


#: The longest domain name (RFC 1035: 253 characters without the final dot)
DOMAIN_MAX = 253


def domain(url: str | None) -> str:
    """The URL's host as ``urlsplit(url).hostname`` gives it (a regex first: 10x faster), or the
    input itself when it is a bare host (``google.com``, as OONI's DNS tests give it), in one
    form (:func:`~reachwatch.observations.text.norm_host`: lower case, no final dot, punycode), so
    ``http://Example.ORG./`` and ``http://bücher.de/`` are the domains a ``domain=`` filter names.
    "" for a host longer than a domain name can be: it names none, and the report's and the
    dashboard's models (a domain of 1 to 253 characters) would refuse every summary holding it."""
    host = _host(url)
    return host if len(host) <= DOMAIN_MAX else ""


def _host(url: str | None) -> str:
    if not url:
        return ""
    plain = _PLAIN_URL.match(url)
    if plain is not None:
        return norm_host(plain.group(1))
    bare = _BARE_HOST.fullmatch(url)
    if bare is not None:  # dns_consistency, quicping, urlgetter... measure a host, not a URL
        return norm_host(bare.group(1))
    try:
        host = urllib.parse.urlsplit(url).hostname
    except ValueError:
        return ""
    return norm_host(host or "")


def category(measurement: dict[str, Any]) -> str | None:
    annotations = measurement.get("annotations")
    if isinstance(annotations, dict):
        code = annotations.get("category_code")
        if isinstance(code, str) and 0 < len(code) <= 16:
            return code
    return None
