"""``decide(measurement) -> Verdict``: observations, then facts, then the first matching rule."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reachwatch.verdict.facts import Facts, facts_of
from reachwatch.verdict.reader import read
from reachwatch.verdict.rules import Blocking, Rule, first_match

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
    return Verdict(
        dns_consistency=facts.dns.consistency,
        body_length_match=diff.body_length_match,
        body_proportion=diff.body_proportion or 0.0,
        status_code_match=diff.status_code_match,
        headers_match=diff.headers_match,
        title_match=diff.title_match,
        blocking=rule.blocking,
        accessible=rule.accessible,
        x_technique=rule.technique,
        x_rule=rule.rule_id + (REDIRECT_SUFFIX if _hop(facts, rule) > 0 else ""),
    )


def _hop(facts: Facts, rule: Rule) -> int:
    if rule.about == "input":
        return 0
    if rule.about == "dns" and facts.dns_depth is not None:
        return facts.dns_depth
    return facts.depth
