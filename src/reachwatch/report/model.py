"""The report's input models, validated at the edge.

Plain JSON-able dicts come in (from the aggregation layer, the store or a file); typed, frozen
models go out. A bad record is a :class:`~reachwatch.errors.UserError` naming the record and field.
The aggregation layer's own key names (``blocked_low``, ``blocked_high``, ``dominant_technique``)
are accepted as aliases of ``ci_low``, ``ci_high`` and ``technique``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any, Literal, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, model_validator

from reachwatch.errors import UserError

State = Literal["blocked", "likely_blocked", "impaired", "down", "ok", "insufficient"]
STATES: tuple[State, ...] = ("blocked", "likely_blocked", "impaired", "down", "ok", "insufficient")
BLOCKING_STATES: frozenset[str] = frozenset({"blocked", "likely_blocked"})


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class _Result(_Model):
    """What a summary row and a daily cell share: the state of measurements grouped by key."""

    probe_cc: str = Field(pattern=r"^[A-Z]{2}$")
    probe_asn: str = Field(pattern=r"^AS\d+$")
    probe_network_name: str = ""
    domain: str = Field(min_length=1, max_length=253)
    state: State
    n_measurements: int = Field(ge=0)
    n_probes: int = Field(ge=0)
    blocked_share: float = Field(ge=0.0, le=1.0)
    ci_low: float = Field(ge=0.0, le=1.0, validation_alias=AliasChoices("ci_low", "blocked_low"))
    ci_high: float = Field(ge=0.0, le=1.0, validation_alias=AliasChoices("ci_high", "blocked_high"))
    technique: str | None = Field(
        default=None, validation_alias=AliasChoices("technique", "dominant_technique")
    )
    first_seen: str | None = None
    last_seen: str | None = None
    witnesses: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _interval_holds_share(self) -> _Result:
        if not self.ci_low <= self.ci_high:
            raise ValueError(f"ci_low {self.ci_low} is above ci_high {self.ci_high}")
        return self

    @property
    def asn_number(self) -> int:
        return int(self.probe_asn[2:])

    @property
    def isp_label(self) -> str:
        return self.probe_network_name or self.probe_asn


class IspSummary(_Result):
    """One (country, network, domain) over the selected period.

    ``first_seen``/``last_seen`` are the first and last measurement (the coverage);
    ``blocked_since``/``last_blocked`` the first and last day whose daily cell was blocking, and
    ``blocked_days`` how many were (:mod:`reachwatch.report.blocked_days` fills them from the cells).
    """

    blocked_since: dt.date | None = None
    last_blocked: dt.date | None = None
    blocked_days: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _blocked_span_holds(self) -> IspSummary:
        since, last = self.blocked_since, self.last_blocked
        if (since is None) != (last is None) or (since is None) != (self.blocked_days == 0):
            raise ValueError("blocked_since, last_blocked and blocked_days go together")
        if since is not None and last is not None and last < since:
            raise ValueError(f"last_blocked {last} is before blocked_since {since}")
        if since is not None and last is not None and self.blocked_days > (last - since).days + 1:
            raise ValueError(f"{self.blocked_days} blocked days do not fit between {since} and {last}")
        return self


class Cell(_Result):
    """One (country, network, domain, day)."""

    day: dt.date


class Event(_Model):
    """A dated event to mark on timelines (an election day, a protest, a court order)."""

    date: dt.date
    label: str = Field(min_length=1, max_length=80)
    end_date: dt.date | None = None
    description: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> Event:
        if self.end_date is not None and self.end_date < self.date:
            raise ValueError(f"end_date {self.end_date} is before date {self.date}")
        return self


class Period(_Model):
    """Inclusive range of days."""

    start: dt.date
    end: dt.date

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.end < self.start:
            raise ValueError(f"period ends ({self.end}) before it starts ({self.start})")
        return self

    def days(self) -> list[dt.date]:
        n = (self.end - self.start).days + 1
        return [self.start + dt.timedelta(days=i) for i in range(n)]

    def __contains__(self, day: object) -> bool:
        return isinstance(day, dt.date) and self.start <= day <= self.end

    @classmethod
    def covering(cls, cells: Iterable[Cell]) -> Period:
        days = [c.day for c in cells]
        if not days:
            raise UserError("no cells to take a period from", fix="pass the period explicitly")
        return cls(start=min(days), end=max(days))


class Measurement(_Model):
    """A raw OONI web_connectivity measurement, as stored; ``raw`` keeps every key as received."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    measurement_uid: str = Field(min_length=1, max_length=200)
    input: str | None = None
    probe_cc: str = ""
    probe_asn: str = ""
    probe_network_name: str = ""
    measurement_start_time: str = ""
    test_name: str = ""
    test_keys: dict[str, Any] = Field(default_factory=dict)
    raw: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any], uid: str | None = None) -> Measurement:
        data = dict(raw)
        data["raw"] = dict(raw)
        if uid is not None:
            data["measurement_uid"] = uid
        return _validate(cls, data, "measurement")


M = TypeVar("M", bound=BaseModel)


def _validate(model: type[M], value: object, where: str) -> M:
    if isinstance(value, model):
        return value
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "record"
        raise UserError(
            f"{field}: {first['msg']}",
            where=where,
            fix=f"{exc.error_count()} problem(s) in this record; see the report model in docs/report.md",
        ) from None


def _parse_many(model: type[M], rows: Iterable[object], name: str) -> list[M]:
    return [_validate(model, row, f"{name}[{i}]") for i, row in enumerate(rows)]


def parse_cells(rows: Iterable[Mapping[str, Any] | Cell], name: str = "cells") -> list[Cell]:
    return _parse_many(Cell, rows, name)


def parse_summary(rows: Iterable[Mapping[str, Any] | IspSummary], name: str = "summary") -> list[IspSummary]:
    return _parse_many(IspSummary, rows, name)


def parse_events(rows: Iterable[Mapping[str, Any] | Event], name: str = "events") -> list[Event]:
    return _parse_many(Event, rows, name)


def parse_period(value: Period | Mapping[str, Any] | tuple[object, object]) -> Period:
    if isinstance(value, tuple):
        value = {"start": value[0], "end": value[1]}
    return _validate(Period, value, "period")
