"""Per-measurement rows to per-cell states: (country, network, domain, day) -> blocked / ok / ..."""

from __future__ import annotations

from reachwatch.aggregate.cells import DEFAULT_KEYS, Cell, CellAccumulator, aggregate
from reachwatch.aggregate.states import RULES, STATES, CellCounts, Rule, Thresholds, decide_state
from reachwatch.aggregate.wilson import wilson_interval

__all__ = [
    "DEFAULT_KEYS",
    "RULES",
    "STATES",
    "Cell",
    "CellAccumulator",
    "CellCounts",
    "Rule",
    "Thresholds",
    "aggregate",
    "decide_state",
    "wilson_interval",
]
