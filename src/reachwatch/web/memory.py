"""A :class:`~reachwatch.web.routes.DataSource` over lists in memory: for tests and demos."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from reachwatch.report.model import Cell, Event, IspSummary, Measurement, Period


@dataclass(slots=True)
class MemorySource:
    summary_rows: list[IspSummary] = field(default_factory=list)
    cell_rows: list[Cell] = field(default_factory=list)
    event_rows: list[Event] = field(default_factory=list)
    measurements: dict[str, Measurement] = field(default_factory=dict)

    def add_measurements(self, items: Iterable[Measurement]) -> None:
        for m in items:
            self.measurements[m.measurement_uid] = m

    def period(self) -> Period | None:
        return Period.covering(self.cell_rows) if self.cell_rows else None

    def summary(self, *, probe_cc: str | None = None, period: Period | None = None) -> Sequence[IspSummary]:
        # Summary rows are per period already; a memory source holds one period only.
        return [r for r in self.summary_rows if probe_cc in (None, r.probe_cc)]

    def cells(
        self,
        *,
        probe_cc: str | None = None,
        probe_asn: str | None = None,
        domain: str | None = None,
        period: Period | None = None,
    ) -> Sequence[Cell]:
        return [
            c
            for c in self.cell_rows
            if probe_cc in (None, c.probe_cc)
            and probe_asn in (None, c.probe_asn)
            and domain in (None, c.domain)
            and (period is None or c.day in period)
        ]

    def events(self, *, period: Period | None = None) -> Sequence[Event]:
        if period is None:
            return list(self.event_rows)
        return [e for e in self.event_rows if e.date <= period.end and (e.end_date or e.date) >= period.start]

    def measurement(self, uid: str) -> Measurement | None:
        return self.measurements.get(uid)
