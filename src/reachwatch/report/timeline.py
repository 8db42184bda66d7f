"""Geometry of one small-multiple timeline: blocked share per day, its interval, the day's state.

Pure computation: a :class:`Timeline` holds numbers and labels only; the SVG is written by the
``_timeline.svg.j2`` template (autoescaped). Rules the picture keeps:

- an ``insufficient`` day is a hatched band over the whole plot height, never a bar of zero;
- a day without any cell is left empty, outlined, and labelled "no data";
- events are a vertical line (a band when they last several days) with their label, on every timeline.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from reachwatch.report.model import Cell, Event, Period
from reachwatch.report.text import pct, short_day, state_label

WIDTH = 460.0
LEFT, RIGHT = 38.0, 12.0
TOP = 28.0  # room for event labels: two rows (more when labels would overlap)
ROW_H = 11.0
PLOT_H = 84.0
STRIP_GAP, STRIP_H = 5.0, 11.0
AXIS_H = 16.0
HEIGHT = TOP + PLOT_H + STRIP_GAP + STRIP_H + AXIS_H
MIN_LABEL_PX = 48.0
LABEL_CHAR_PX = 5.6  # rough width of one character of an event label  # a gap narrower than this gets its label written vertically


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    w: float
    h: float
    state: str
    tip: str
    whisker_x: float
    whisker_top: float
    whisker_bottom: float


@dataclass(frozen=True, slots=True)
class Gap:
    """A run of days drawn as a band: ``kind`` is ``insufficient`` or ``nodata``."""

    kind: str
    x: float
    w: float
    label: str
    vertical: bool
    tip: str


@dataclass(frozen=True, slots=True)
class Mark:
    x: float
    w: float  # 0 for a one-day event
    label: str
    row: int
    anchor: str  # "start" or "end"
    tip: str


@dataclass(frozen=True, slots=True)
class Tick:
    pos: float
    text: str


@dataclass(frozen=True, slots=True)
class StripDay:
    x: float
    w: float
    state: str | None  # None: no data


@dataclass(slots=True)
class Timeline:
    key: str
    title: str
    subtitle: str
    summary: str
    width: float = WIDTH
    height: float = HEIGHT
    left: float = LEFT
    top: float = TOP
    plot_w: float = WIDTH - LEFT - RIGHT
    plot_h: float = PLOT_H
    strip_y: float = TOP + PLOT_H + STRIP_GAP
    strip_h: float = STRIP_H
    bars: list[Bar] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    strip: list[StripDay] = field(default_factory=list)
    xticks: list[Tick] = field(default_factory=list)
    yticks: list[Tick] = field(default_factory=list)

    @property
    def plot_bottom(self) -> float:
        return self.top + self.plot_h

    @property
    def axis_y(self) -> float:
        return self.strip_y + self.strip_h + 11.0


def _tip(c: Cell) -> str:
    technique = f", technique {c.technique}" if c.technique else ""
    return (
        f"{c.day.isoformat()}: {state_label(c.state)}; {pct(c.blocked_share)} of measurements blocked "
        f"(95% interval {pct(c.ci_low)}–{pct(c.ci_high)}); {c.n_measurements} measurements from "
        f"{c.n_probes} probes{technique}"
    )


def _runs(days: Sequence[dt.date], kinds: Sequence[str | None]) -> list[tuple[str, int, int]]:
    """Maximal runs (kind, first index, last index) of equal non-None kinds."""
    out: list[tuple[str, int, int]] = []
    for i, kind in enumerate(kinds):
        if kind is None:
            continue
        if out and out[-1][0] == kind and out[-1][2] == i - 1:
            out[-1] = (kind, out[-1][1], i)
        else:
            out.append((kind, i, i))
    return out


def _marks(events: Sequence[Event], period: Period, slot: float) -> list[Mark]:
    """Event marks, their labels spread over as many rows as needed so that none overlap."""
    marks: list[Mark] = []
    row_ends: list[float] = []  # for each label row, the x where its last label ends
    for ev in sorted((e for e in events if _overlaps(e, period)), key=lambda e: e.date):
        start = max(ev.date, period.start)
        end = min(ev.end_date or ev.date, period.end)
        i0, i1 = (start - period.start).days, (end - period.start).days
        x = LEFT + (i0 + 0.5) * slot if ev.end_date is None else LEFT + i0 * slot
        w = 0.0 if ev.end_date is None else (i1 - i0 + 1) * slot
        text_w = LABEL_CHAR_PX * len(ev.label) + 6
        anchor = "end" if x + text_w > WIDTH - RIGHT else "start"
        lo, hi = (x - text_w, x) if anchor == "end" else (x, x + text_w)
        row = next((r for r, taken in enumerate(row_ends) if lo >= taken), len(row_ends))
        if row == len(row_ends):
            row_ends.append(hi)
        row_ends[row] = max(row_ends[row], hi)
        when = ev.date.isoformat() + (f" to {ev.end_date.isoformat()}" if ev.end_date else "")
        tip = f"{ev.label} ({when})" + (f": {ev.description}" if ev.description else "")
        marks.append(Mark(x=x, w=w, label=ev.label, row=row, anchor=anchor, tip=tip))
    return marks


def build_timeline(
    key: str,
    title: str,
    subtitle: str,
    cells: Iterable[Cell],
    period: Period,
    events: Sequence[Event] = (),
) -> Timeline:
    days = period.days()
    by_day = {c.day: c for c in cells if c.day in period}
    n = len(days)
    slot = (WIDTH - LEFT - RIGHT) / n
    bar_w = max(1.0, slot * 0.78)
    marks = _marks(events, period, slot)
    top = ROW_H * max(2, 1 + max((m.row for m in marks), default=0)) + 6.0
    t = Timeline(key=key, title=title, subtitle=subtitle, summary="", marks=marks)
    t.top, t.strip_y = top, top + PLOT_H + STRIP_GAP
    t.height = t.strip_y + STRIP_H + AXIS_H
    y_of = lambda share: top + PLOT_H * (1.0 - share)  # noqa: E731

    for i, day in enumerate(days):
        x = LEFT + i * slot
        cell = by_day.get(day)
        t.strip.append(StripDay(x=x + 0.5, w=max(0.5, slot - 1.0), state=cell.state if cell else None))
        if cell is None or cell.state == "insufficient":
            continue
        bar_top = y_of(cell.blocked_share)
        cx = x + slot / 2
        t.bars.append(
            Bar(
                x=cx - bar_w / 2,
                y=bar_top,
                w=bar_w,
                h=top + PLOT_H - bar_top,
                state=cell.state,
                tip=_tip(cell),
                whisker_x=cx,
                whisker_top=y_of(cell.ci_high),
                whisker_bottom=y_of(cell.ci_low),
            )
        )

    kinds = [
        "nodata" if d not in by_day else ("insufficient" if by_day[d].state == "insufficient" else None)
        for d in days
    ]
    for kind, first, last in _runs(days, kinds):
        w = (last - first + 1) * slot
        label = "no data" if kind == "nodata" else "insufficient"
        span = short_day(days[first]) + ("" if first == last else f" – {short_day(days[last])}")
        reason = "no measurement" if kind == "nodata" else "too few probes or measurements to judge"
        t.gaps.append(
            Gap(kind, LEFT + first * slot, w, label, vertical=w < MIN_LABEL_PX, tip=f"{span}: {reason}")
        )

    step = max(1, round(n / 5))
    t.xticks = [Tick(LEFT + (i + 0.5) * slot, short_day(days[i])) for i in range(0, n, step)]
    t.yticks = [Tick(y_of(v), pct(v)) for v in (0.0, 0.5, 1.0)]
    t.summary = _summary(title, subtitle, by_day, period)
    return t


def _overlaps(ev: Event, period: Period) -> bool:
    return ev.date <= period.end and (ev.end_date or ev.date) >= period.start


def _summary(title: str, subtitle: str, by_day: dict[dt.date, Cell], period: Period) -> str:
    counts: dict[str, int] = {}
    for c in by_day.values():
        counts[c.state] = counts.get(c.state, 0) + 1
    missing = len(period.days()) - len(by_day)
    parts = [f"{k} {state_label(s)}" for s, k in sorted(counts.items(), key=lambda kv: -kv[1])]
    if missing:
        parts.append(f"{missing} without data")
    return f"{title}, {subtitle}: daily blocked share; days: " + ", ".join(parts)
