"""The state of a cell, decided by rules kept as data.

A cell's evidence is summarised in :class:`CellCounts`: plain integers that a Python accumulator
(:mod:`.cells`) or a SQL ``GROUP BY`` can produce alike, so both paths share one decision,
:func:`decide_state`. Rules are tried in order; the first whose condition holds decides, and the
cell records its ``rule_id``. The last rule always holds and says ``insufficient``: a cell the
rules cannot judge is never ``ok``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from reachwatch.aggregate.wilson import wilson_interval

STATES = ("blocked", "likely_blocked", "impaired", "down", "ok", "insufficient")


@dataclass(frozen=True, slots=True)
class Thresholds:
    min_probes: int = 2  # fewer distinct probes: insufficient (one probe may be a broken home router)
    technique_probes: int = 3  # one blocking technique seen from this many distinct probes: blocked
    likely_share: float = 0.5  # blocked share at least this ...
    likely_low: float = 0.2  # ... and its Wilson 95% lower bound at least this: likely_blocked
    impaired_share: float = 0.2  # blocked + throttled share at least this: impaired


@dataclass(frozen=True, slots=True)
class CellCounts:
    """Everything the rules look at, for one cell. All counts are of measurements unless named
    ``*_probes`` (distinct probes)."""

    n_measurements: int = 0
    n_probes: int = 0
    n_blocked: int = 0  # the verdict's ``blocking`` is a technique (an anomaly), not false/null
    n_accessible: int = 0  # accessible is true
    n_down: int = 0  # blocking false and accessible false: the control could not reach it either
    n_control_failure: int = 0  # no control answer: the measurement cannot be judged
    n_confirmed: int = 0  # a confirming fingerprint matched
    n_dns_artefact: int = 0  # a DNS hijack or bogon answer
    n_throttled: int = 0  # x_technique throttled
    max_technique_probes: int = 0  # the most distinct probes reporting one blocking technique

    @property
    def n_judged(self) -> int:
        return self.n_measurements - self.n_control_failure

    @property
    def blocked_share(self) -> float:
        return self.n_blocked / self.n_judged if self.n_judged > 0 else 0.0

    def blocked_interval(self) -> tuple[float, float]:
        return wilson_interval(self.n_blocked, max(self.n_judged, 0))


Condition = Callable[[CellCounts, Thresholds], bool]


@dataclass(frozen=True, slots=True)
class Rule:
    rule_id: str
    comment: str
    condition: Condition
    state: str


def _likely(c: CellCounts, t: Thresholds) -> bool:
    return c.blocked_share >= t.likely_share and c.blocked_interval()[0] >= t.likely_low


def _impaired(c: CellCounts, t: Thresholds) -> bool:
    return c.n_judged > 0 and (c.n_blocked + c.n_throttled) / c.n_judged >= t.impaired_share


RULES: tuple[Rule, ...] = (
    Rule(
        "cell.empty",
        "No measurement at all: no data is never ok.",
        lambda c, t: c.n_measurements == 0,
        "insufficient",
    ),
    Rule(
        "cell.fingerprint",
        "A known blockpage or injected answer matched (an artefact): blocked, even from one probe.",
        lambda c, t: c.n_confirmed > 0,
        "blocked",
    ),
    Rule(
        "cell.dns_artefact",
        "A DNS answer was hijacked or a bogon (private/reserved address): an artefact of blocking.",
        lambda c, t: c.n_dns_artefact > 0,
        "blocked",
    ),
    Rule(
        "cell.technique_probes",
        "The same blocking technique reported by >= technique_probes distinct probes.",
        lambda c, t: c.max_technique_probes >= t.technique_probes,
        "blocked",
    ),
    Rule(
        "cell.unjudged",
        "Every measurement lacks a control answer: nothing can be said.",
        lambda c, t: c.n_judged <= 0,
        "insufficient",
    ),
    Rule(
        "cell.few_probes",
        "Fewer than min_probes distinct probes and no artefact: one vantage point is not enough.",
        lambda c, t: c.n_probes < t.min_probes,
        "insufficient",
    ),
    Rule(
        "cell.down",
        "Most judged measurements: site unreachable from the control too (down, not blocked).",
        lambda c, t: 2 * c.n_down >= c.n_judged,
        "down",
    ),
    Rule(
        "cell.likely_blocked",
        "Blocked share >= likely_share with its Wilson lower bound >= likely_low.",
        _likely,
        "likely_blocked",
    ),
    Rule(
        "cell.impaired",
        "Blocked or throttled in >= impaired_share of judged measurements, short of likely_blocked.",
        _impaired,
        "impaired",
    ),
    Rule(
        "cell.ok",
        "Most judged measurements reached the site as the control did.",
        lambda c, t: 2 * c.n_accessible > c.n_judged,
        "ok",
    ),
    Rule(
        "cell.undecided",
        "Nothing above holds (e.g. verdicts without blocking/accessible): insufficient, never ok.",
        lambda c, t: True,
        "insufficient",
    ),
)


def decide_state(
    counts: CellCounts, thresholds: Thresholds | None = None, rules: tuple[Rule, ...] = RULES
) -> tuple[str, str]:
    """(state, rule_id) of the first rule whose condition holds."""
    t = thresholds or Thresholds()
    for rule in rules:
        if rule.condition(counts, t):
            return rule.state, rule.rule_id
    raise AssertionError("the last rule must always hold")  # pragma: no cover
