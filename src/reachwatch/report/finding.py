"""The one-line finding, in plain words, written from the per-ISP summary rows.

"example.org was blocked by 5 of 6 networks measured in Pakistan between 2 and 28 July 2018,
by DNS hijacking and TLS SNI filtering (connection reset)."

A network counts as "measured" only when its state is not ``insufficient``; those are mentioned
apart, so the sentence never claims more coverage than there was. The dates are the first and
last *blocked day* of the networks counted as blocking (:mod:`reachwatch.report.blocked_days`),
never the first and last measurement: the report and the dashboard both write this sentence from
summary rows that carry them, so they say the same.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from reachwatch.report.blocked_days import blocked_span, with_blocked_days
from reachwatch.report.model import BLOCKING_STATES, Cell, IspSummary, Period
from reachwatch.report.text import country_name, day_range, join_words, technique_phrase


def domain_finding(
    domain: str, cc: str, rows: Sequence[IspSummary], period: Period, cells: Sequence[Cell] = ()
) -> str:
    """The sentence for ``domain`` in ``cc``; ``cells``, when given, set the rows' blocked days."""
    rows = [r for r in rows if r.domain == domain and r.probe_cc == cc]
    if cells:
        rows = with_blocked_days(rows, cells)
    judged = [r for r in rows if r.state != "insufficient"]
    blocking = [r for r in judged if r.state in BLOCKING_STATES]
    unjudged = len(rows) - len(judged)
    where = f"in {country_name(cc)}"
    tail = (
        f" ({unjudged} more network{'s' if unjudged != 1 else ''} had too few measurements to say.)"
        if unjudged
        else ""
    )
    if not judged:
        return f"There were too few measurements of {domain} {where} {day_range(period.start, period.end)} to say whether it was blocked.{tail}"
    n = f"{len(blocking)} of {len(judged)} network{'s' if len(judged) != 1 else ''} measured"
    if not blocking:
        impaired = sum(r.state == "impaired" for r in judged)
        extra = f", though {impaired} showed partial interference" if impaired else ""
        return f"{domain} was not blocked by any of the {len(judged)} networks measured {where} {day_range(period.start, period.end)}{extra}.{tail}"
    verb = "was blocked" if all(r.state == "blocked" for r in blocking) else "was blocked or likely blocked"
    span = blocked_span(blocking)
    when = (
        day_range(*span)
        if span
        else f"over the period {day_range(period.start, period.end)} taken as a whole "
        "(no daily result dates the blocking)"
    )
    techniques = Counter(r.technique for r in blocking if r.technique and r.technique != "none")
    ranked = sorted(techniques.items(), key=lambda kv: (-kv[1], kv[0]))
    ordered = list(dict.fromkeys(technique_phrase(t) for t, _ in ranked))
    how = f", by {join_words(ordered)}" if ordered else ""
    return f"{domain} {verb} by {n} {where} {when}{how}.{tail}"


def findings(rows: Sequence[IspSummary], period: Period, cells: Sequence[Cell] = ()) -> list[str]:
    """One sentence per (domain, country), most-blocked first."""
    if cells:
        rows = with_blocked_days(rows, cells)
    keys = sorted({(r.domain, r.probe_cc) for r in rows})
    score = {k: sum(r.state in BLOCKING_STATES for r in rows if (r.domain, r.probe_cc) == k) for k in keys}
    keys.sort(key=lambda k: (-score[k], k))
    return [domain_finding(d, cc, rows, period) for d, cc in keys]
