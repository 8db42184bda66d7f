"""``decide(measurement) -> Verdict``: observations, then facts, then the first matching rule."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from reachwatch.verdict.facts import Facts, facts_of
from reachwatch.verdict.reader import read
from reachwatch.verdict.rules import RULES, Blocking, Rule, first_match

REDIRECT_SUFFIX = "@redirect"


@dataclass(frozen=True, slots=True)
class Verdict:
    dns_consistency: str | None
    body_length_match: bool | None
    body_proportion: float
    status_code_match: bool | None
    headers_match: bool | None
    title_match: bool | None
    blocking: Blocking
    accessible: bool | None
    x_technique: str | None
    x_rule: str

    def as_test_keys(self) -> dict[str, Any]:
        """The verdict keys, named and shaped as in ``test_keys``."""
        return {
            "dns_consistency": self.dns_consistency,
            "body_length_match": self.body_length_match,
            "body_proportion": self.body_proportion,
            "status_code_match": self.status_code_match,
            "headers_match": self.headers_match,
            "title_match": self.title_match,
            "blocking": self.blocking,
            "accessible": self.accessible,
            "x_technique": self.x_technique,
            "x_rule": self.x_rule,
        }


def decide(measurement: Mapping[str, Any]) -> Verdict:
    """The verdict on one web_connectivity measurement (any version). Never raises on bad input."""
    facts = facts_of(read(measurement))
    rule = first_match(facts)
    return verdict_of(facts, rule)


def verdict_of(facts: Facts, rule: Rule) -> Verdict:
    diff = facts.diff
    values = (
        facts.dns.consistency,
        diff.body_length_match,
        diff.body_proportion or 0.0,
        diff.status_code_match,
        diff.headers_match,
        diff.title_match,
        rule.blocking,
        rule.accessible,
        rule.technique,
        _REDIRECTED[rule.rule_id] if _hop(facts, rule.about) > 0 else rule.rule_id,
    )
    return _interned(*values)


# Verdicts are immutable values and few of them recur (a rule, a DNS consistency, the same diff):
# each distinct one is built once (a frozen dataclass costs a call per field to build).
_interned: Final = lru_cache(maxsize=4096)(Verdict)
_REDIRECTED: Final = {rule.rule_id: rule.rule_id + REDIRECT_SUFFIX for rule in RULES}


def _hop(facts: Facts, about: str) -> int:
    """The hop of what decided: none for the input, the inconsistent DNS, else the event's."""
    if about == "input":
        return 0
    if about == "dns" and facts.dns_depth is not None:
        return facts.dns_depth
    event = facts.event
    return event.depth if event is not None else 0
