"""A :class:`~reachwatch.web.routes.DataSource` over the measurement store (DuckDB or ClickHouse).

Cells are computed per request by :func:`reachwatch.aggregate.sql.query_cells` (the database
counts, the shared rules decide); measurements are read raw and shown as stored.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

import orjson

from reachwatch.aggregate.sql import day_range
from reachwatch.report.from_store import daily_records, period_filters, summary_records
from reachwatch.report.model import (
    Cell,
    Event,
    IspSummary,
    Measurement,
    Period,
    parse_cells,
    parse_summary,
)
from reachwatch.store.compression import decompress
from reachwatch.store.readers import Reader, reader_for_store
from reachwatch.store.schema import TABLE


class StoreSource:
    """``reader`` is a reader or a callable giving one (the collector's store opens after the app)."""

    def __init__(self, reader: Reader | Callable[[], Reader], events: Sequence[Event] = ()) -> None:
        self._reader = reader
        self._events = list(events)

    @property
    def reader(self) -> Reader:
        return self._reader() if callable(self._reader) else self._reader

    def period(self) -> Period | None:
        found = day_range(self.reader)
        return Period(start=found[0], end=found[1]) if found else None

    def summary(self, *, probe_cc: str | None = None, period: Period | None = None) -> Sequence[IspSummary]:
        f = period_filters(period.start if period else None, period.end if period else None, cc=probe_cc)
        return parse_summary(summary_records(self.reader, f))

    def cells(
        self,
        *,
        probe_cc: str | None = None,
        probe_asn: str | None = None,
        domain: str | None = None,
        period: Period | None = None,
    ) -> Sequence[Cell]:
        start, end = (period.start, period.end) if period else (None, None)
        f = period_filters(start, end, cc=probe_cc, asn=probe_asn, domain=domain)
        rows = daily_records(self.reader, f)
        for r in rows:
            r["day"] = dt.date.fromisoformat(r["day"])
        return parse_cells(rows)

    def events(self, *, period: Period | None = None) -> Sequence[Event]:
        if period is None:
            return list(self._events)
        return [e for e in self._events if e.date <= period.end and (e.end_date or e.date) >= period.start]

    def measurement(self, uid: str) -> Measurement | None:
        rows = self.reader.rows(f"SELECT raw FROM {TABLE} WHERE measurement_uid = ? LIMIT 1", [uid])
        if not rows:
            return None
        raw = rows[0][0]
        data = bytes(raw) if not isinstance(raw, str) else _b64(raw)
        return Measurement.from_raw(orjson.loads(decompress(data)), uid=uid)


def lazy_reader(get_store: Callable[[], object]) -> Callable[[], Reader]:
    """A reader over the store ``get_store()`` returns, made on first use (after the app opened it)."""
    cache: dict[int, Reader] = {}

    def get() -> Reader:
        store = get_store()
        reader = cache.get(id(store))
        if reader is None:
            cache.clear()
            reader = cache[id(store)] = reader_for_store(store)
        return reader

    return get


def _b64(text: str) -> bytes:
    import base64

    return base64.b64decode(text)
