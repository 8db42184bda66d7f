"""Cell states over SQL: the database counts, :func:`~.states.decide_state` decides.

Three generated statements per request (all valid on DuckDB, ClickHouse 18.16 and current
ClickHouse): per-cell counts (:class:`~.states.CellCounts` fields, first/last seen), per-cell
technique counts (distinct probes per blocking technique, the dominant one), and witnesses (up to 5
uids per cell, artefacts first, ``LIMIT 5 BY`` on ClickHouse, ``row_number()`` on DuckDB). Distinct
probes are counted over ``probe_id_hash`` (a hash of the vantage point, its key gone with its day:
:mod:`reachwatch.collector.vantage`), never identities. The
row meaning is the one of :mod:`.cells`: ``failure`` stands for "no control answer / no verdict".

Cells, the networks' names and the period count only the measurements the collector placed on a
network itself (``attributed``), unless asked for the others too (``unattributed=True``): the
network of an unattributed measurement is whatever its sender claimed, so one such measurement
could make a network look blocking, or rename it, in a published report.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

from reachwatch.aggregate.cells import DEFAULT_KEYS, MAX_WITNESSES, Cell
from reachwatch.aggregate.states import CellCounts, Thresholds
from reachwatch.errors import UserError
from reachwatch.store.query import Dialect, Filters, where
from reachwatch.store.readers import Reader
from reachwatch.store.schema import TABLE

#: grouping key -> column
KEY_COLUMNS = {
    "probe_cc": "probe_cc",
    "probe_asn": "probe_asn",
    "domain": "domain",
    "day": "measurement_start_day",
}
_COUNT_FIELDS = (
    "n_blocked",
    "n_accessible",
    "n_down",
    "n_control_failure",
    "n_confirmed",
    "n_dns_artefact",
    "n_throttled",
)


def parse_keys(text: str) -> tuple[str, ...]:
    keys = tuple(k.strip() for k in text.split(",") if k.strip())
    bad = [k for k in keys if k not in KEY_COLUMNS]
    if bad or not keys or len(set(keys)) != len(keys):
        raise UserError(
            f"bad --by {text!r}", fix=f"a comma-separated subset of {', '.join(KEY_COLUMNS)}, each once"
        )
    return keys


class Conditions:
    """Per-row conditions, spelled for one dialect (booleans are UInt8 on ClickHouse)."""

    def __init__(self, dialect: Dialect) -> None:
        t, f = ("1", "0") if dialect == "clickhouse" else ("true", "false")
        self.blocked = (
            "(coalesce(blocking, 'false') NOT IN ('', 'false', 'null') "
            "OR coalesce(x_technique, 'none') NOT IN ('none', 'throttled'))"
        )
        self.dns_artefact = "coalesce(x_technique, '') IN ('dns-hijack', 'dns-bogon')"
        self.artefact = f"(confirmed = {t} OR {self.dns_artefact})"
        judged = f"failure = {f}"  # shares are of judged measurements (with a control answer) only
        self.counts = (
            f"{self.blocked} AND {judged}",
            f"coalesce(accessible, {f}) = {t} AND {judged}",
            f"coalesce(blocking, '') = 'false' AND coalesce(accessible, {t}) = {f} AND {judged}",
            f"failure = {t}",
            f"confirmed = {t}",
            self.dns_artefact,
            f"coalesce(x_technique, '') = 'throttled' AND {judged}",
        )
        self.distinct = (
            "uniqExact(probe_id_hash)" if dialect == "clickhouse" else "count(DISTINCT probe_id_hash)"
        )


def attributed_only(f: Filters, unattributed: bool = False) -> Filters:
    """``f`` keeping to the measurements the collector attributed, unless ``unattributed`` (or
    ``f`` says which it wants)."""
    if unattributed or f.attributed is not None:
        return f
    return dataclasses.replace(f, attributed=True)


def unattributed_count(reader: Reader, f: Filters | None = None) -> int:
    """How many measurements of the selection the collector could not attribute (left out of the
    cells unless asked for)."""
    clause, params = _where(dataclasses.replace(f or Filters(), attributed=False), "")
    rows = reader.rows(f"SELECT count(*) FROM {TABLE}{clause}", params)
    return int(rows[0][0]) if rows else 0


def _where(f: Filters, restrict: str, *more: str) -> tuple[str, list[Any]]:
    clause, params = where(f)
    parts = [clause[len(" WHERE ") :]] if clause else []
    parts += ["domain <> ''", *(p for p in (restrict, *more) if p)]
    return " WHERE " + " AND ".join(parts), params


def cell_sql(
    keys: Sequence[str], f: Filters, dialect: Dialect, restrict: str = ""
) -> dict[str, tuple[str, list[Any]]]:
    """The three statements ("counts", "techniques", "witnesses") with their parameters.

    ``restrict`` is an extra condition (no parameters), e.g. a semi-join on touched cells.
    """
    c = Conditions(dialect)
    cols = [KEY_COLUMNS[k] for k in keys]
    group = ", ".join(cols)
    ifs = ", ".join(f"sum(CASE WHEN {cond} THEN 1 ELSE 0 END)" for cond in c.counts)
    clause, params = _where(f, restrict)
    counts = (
        f"SELECT {group}, count(*), {c.distinct}, {ifs}, "
        f"min(measurement_start_time), max(measurement_start_time) "
        f"FROM {TABLE}{clause} GROUP BY {group} ORDER BY {group}"
    )
    tclause, tparams = _where(f, restrict, c.blocked, "x_technique IS NOT NULL")
    techniques = (
        f"SELECT {group}, x_technique, {c.distinct}, count(*) "
        f"FROM {TABLE}{tclause} GROUP BY {group}, x_technique"
    )
    wclause, wparams = _where(f, restrict, f"({c.artefact} OR {c.blocked})")
    rank = f"CASE WHEN {c.artefact} THEN 0 ELSE 1 END"
    if dialect == "clickhouse":
        witnesses = (
            f"SELECT {group}, measurement_uid FROM {TABLE}{wclause} "
            f"ORDER BY {group}, {rank}, measurement_uid LIMIT {MAX_WITNESSES:d} BY {group}"
        )
    else:
        witnesses = (
            f"SELECT {group}, measurement_uid FROM (SELECT {group}, measurement_uid, row_number() OVER "
            f"(PARTITION BY {group} ORDER BY {rank}, measurement_uid) AS rn FROM {TABLE}{wclause}) "
            f"WHERE rn <= {MAX_WITNESSES:d} ORDER BY {group}, rn"
        )
    return {
        "counts": (counts, params),
        "techniques": (techniques, tparams),
        "witnesses": (witnesses, wparams),
    }


def _value(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        return f"{v:%Y-%m-%d %H:%M:%S}"
    if isinstance(v, dt.date):
        return v.isoformat()
    return v


def query_cells(
    reader: Reader,
    keys: Sequence[str] = DEFAULT_KEYS,
    f: Filters | None = None,
    thresholds: Thresholds | None = None,
    restrict: str = "",
    *,
    unattributed: bool = False,
) -> list[Cell]:
    """Every cell of the selection, ordered by key, decided by the same rules as :func:`aggregate`
    (of attributed measurements only, unless ``unattributed``)."""
    f = attributed_only(f or Filters(), unattributed)
    statements = cell_sql(keys, f, reader.dialect, restrict)
    n = len(keys)
    best: dict[tuple[Any, ...], int] = {}  # key -> most distinct probes of one technique
    dominant: dict[tuple[Any, ...], tuple[int, str]] = {}
    for row in reader.rows(*statements["techniques"]):
        key = tuple(_value(v) for v in row[:n])
        technique, probes, count = str(row[n]), int(row[n + 1]), int(row[n + 2])
        best[key] = max(probes, best.get(key, 0))
        d = dominant.get(key)
        if d is None or (-count, technique) < (-d[0], d[1]):
            dominant[key] = (count, technique)
    witnesses: dict[tuple[Any, ...], list[str]] = {}
    for row in reader.rows(*statements["witnesses"]):
        witnesses.setdefault(tuple(_value(v) for v in row[:n]), []).append(str(row[n]))
    cells = []
    for row in reader.rows(*statements["counts"]):
        key = tuple(_value(v) for v in row[:n])
        counts = CellCounts(
            n_measurements=int(row[n]),
            n_probes=int(row[n + 1]),
            max_technique_probes=best.get(key, 0),
            **{name: int(v) for name, v in zip(_COUNT_FIELDS, row[n + 2 : n + 9], strict=True)},
        )
        cells.append(
            Cell.from_counts(
                tuple(zip(keys, key, strict=True)),
                counts,
                thresholds=thresholds,
                dominant_technique=dominant[key][1] if key in dominant else None,
                first_seen=_value(row[n + 9]),
                last_seen=_value(row[n + 10]),
                witnesses=witnesses.get(key, ()),
            )
        )
    return cells


def network_names(reader: Reader, f: Filters | None = None, *, unattributed: bool = False) -> dict[str, str]:
    """probe_asn -> a network name seen for it (the greatest, for determinism), from attributed
    measurements only unless ``unattributed`` (a probe's claim would rename the network)."""
    clause, params = _where(attributed_only(f or Filters(), unattributed), "")
    sql = f"SELECT probe_asn, max(coalesce(probe_network_name, '')) FROM {TABLE}{clause} GROUP BY probe_asn"
    return {str(a): str(name) for a, name in reader.rows(sql, params)}


def day_range(
    reader: Reader, f: Filters | None = None, *, unattributed: bool = False
) -> tuple[dt.date, dt.date] | None:
    """The first and last day of the cells' measurements (attributed only, unless ``unattributed``)."""
    clause, params = _where(attributed_only(f or Filters(), unattributed), "")
    rows = reader.rows(
        f"SELECT min(measurement_start_day), max(measurement_start_day), count(*) FROM {TABLE}{clause}",
        params,
    )
    if not rows or not rows[0][2]:
        return None
    lo, hi = (dt.date.fromisoformat(_value(v)) for v in rows[0][:2])
    return lo, hi
