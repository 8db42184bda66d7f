"""The verdict engine: was this website blocked, and how?

``decide(measurement)`` reads one web_connectivity measurement (ours or OONI's, any version)
and returns a :class:`Verdict` with OONI's keys (Web Connectivity v0.5 classic semantics) plus
ours: ``x_technique`` (closed vocabulary, docs/contracts.md) and ``x_rule`` (the rule that
decided). The rules are data, in :data:`RULES`; docs/verdict.md explains them.
"""

from reachwatch.verdict.engine import REDIRECT_SUFFIX, Verdict, decide
from reachwatch.verdict.rules import RULES, TECHNIQUES, Rule

__all__ = ["REDIRECT_SUFFIX", "RULES", "TECHNIQUES", "Rule", "Verdict", "decide"]
