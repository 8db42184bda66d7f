"""Since when a network blocked a site: the first and last *blocked day* of its daily cells.

A per-network summary row is decided over the whole period, and its ``first_seen``/``last_seen``
are when the network was measured, not when it blocked: a network blocking from the 14th of a
period starting on the 10th has ``first_seen`` on the 10th. "Blocked since" is read here from the
daily cells (country, network, site, day) instead, in the one place the report, its exports and
the dashboard (both of its data sources) take it from; the one-line finding's dates are made from
the same rows (:mod:`reachwatch.report.finding`).

Which days count is a rule kept as data (:data:`BLOCKED_DAY`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from reachwatch.report.model import BLOCKING_STATES, Cell, IspSummary

Key = tuple[str, str, str]  # (probe_cc, probe_asn, domain)


@dataclass(frozen=True, slots=True)
class DayRule:
    rule_id: str
    states: frozenset[str]
    comment: str


BLOCKED_DAY = DayRule(
    "day.blocked",
    BLOCKING_STATES,
    "A day counts as blocked when its cell is blocked or likely blocked: the states the report counts "
    "as blocking everywhere else. Impaired does not count: a fifth or more of failures short of "
    "'likely blocked' is interference the report does not call blocking, and a 'blocked since' date "
    "must not be earlier than the first day the report itself would call blocked. Down and "
    "insufficient days say nothing about blocking.",
)


@dataclass(frozen=True, slots=True)
class BlockedDays:
    first: dt.date
    last: dt.date
    count: int  # days blocked from first to last (it may have stopped in between)


def key(row: IspSummary | Cell) -> Key:
    return (row.probe_cc, row.probe_asn, row.domain)


def blocked_days(cells: Iterable[Cell], rule: DayRule = BLOCKED_DAY) -> dict[Key, BlockedDays]:
    """Per (country, network, site): its first and last blocked day and how many there were."""
    days: dict[Key, set[dt.date]] = {}
    for c in cells:
        if c.state in rule.states:
            days.setdefault(key(c), set()).add(c.day)
    return {k: BlockedDays(min(d), max(d), len(d)) for k, d in days.items()}


def with_blocked_days(
    summary: Sequence[IspSummary], cells: Sequence[Cell], rule: DayRule = BLOCKED_DAY
) -> list[IspSummary]:
    """``summary`` with ``blocked_since``, ``last_blocked`` and ``blocked_days`` taken from ``cells``.

    A row whose (country, network, site) has cells gets them from those cells (none blocked: no
    dates, 0 days); a row without any cell keeps what it carries (read from a file, say).
    """
    found = blocked_days(cells, rule)
    covered = {key(c) for c in cells}
    out = []
    for row in summary:
        k = key(row)
        if k not in covered:
            out.append(row)
            continue
        span = found.get(k)
        out.append(
            row.model_copy(
                update={
                    "blocked_since": span.first if span else None,
                    "last_blocked": span.last if span else None,
                    "blocked_days": span.count if span else 0,
                }
            )
        )
    return out


def blocked_span(rows: Sequence[IspSummary]) -> tuple[dt.date, dt.date] | None:
    """The first and last blocked day over ``rows`` (None when no row has one)."""
    firsts = [r.blocked_since for r in rows if r.blocked_since is not None]
    lasts = [r.last_blocked for r in rows if r.last_blocked is not None]
    return (min(firsts), max(lasts)) if firsts and lasts else None
