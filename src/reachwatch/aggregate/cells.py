"""Aggregate per-measurement rows into cells, in pure Python, one pass, bounded memory per cell.

A row is a mapping with (missing keys read as absent): ``probe_cc, probe_asn, domain, day,
probe_id, blocking, accessible, x_technique, confirmed, dns_hijack, dns_bogon, control_failure,
measurement_uid, measurement_start_time``. Probes are counted through 8-byte BLAKE2b digests of
``probe_id``: a cell holds hashes, never identities.

SQL backends can compute :class:`~reachwatch.aggregate.states.CellCounts` per cell themselves and
call :meth:`Cell.from_counts`; the state decision is the same function either way.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reachwatch.aggregate.states import CellCounts, Thresholds, decide_state

DEFAULT_KEYS = ("probe_cc", "probe_asn", "domain", "day")
MAX_WITNESSES = 5
NOT_BLOCKING = frozenset({"none", "throttled"})


@dataclass(frozen=True, slots=True)
class Cell:
    key: tuple[tuple[str, Any], ...]  # ((grouping column, value), ...)
    state: str
    rule_id: str
    counts: CellCounts
    blocked_share: float
    blocked_low: float
    blocked_high: float
    dominant_technique: str | None
    first_seen: str | None
    last_seen: str | None
    witnesses: tuple[str, ...]

    @property
    def n_measurements(self) -> int:
        return self.counts.n_measurements

    @property
    def n_probes(self) -> int:
        return self.counts.n_probes

    @classmethod
    def from_counts(
        cls,
        key: tuple[tuple[str, Any], ...],
        counts: CellCounts,
        *,
        thresholds: Thresholds | None = None,
        dominant_technique: str | None = None,
        first_seen: str | None = None,
        last_seen: str | None = None,
        witnesses: Iterable[str] = (),
    ) -> Cell:
        state, rule_id = decide_state(counts, thresholds)
        low, high = counts.blocked_interval()
        return cls(
            key=key,
            state=state,
            rule_id=rule_id,
            counts=counts,
            blocked_share=counts.blocked_share,
            blocked_low=low,
            blocked_high=high,
            dominant_technique=dominant_technique,
            first_seen=first_seen,
            last_seen=last_seen,
            witnesses=tuple(witnesses)[:MAX_WITNESSES],
        )

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.key)
        out.update(
            state=self.state,
            rule_id=self.rule_id,
            n_measurements=self.counts.n_measurements,
            n_probes=self.counts.n_probes,
            blocked_share=self.blocked_share,
            blocked_low=self.blocked_low,
            blocked_high=self.blocked_high,
            dominant_technique=self.dominant_technique,
            first_seen=self.first_seen,
            last_seen=self.last_seen,
            witnesses=list(self.witnesses),
        )
        return out


def probe_hash(probe_id: object) -> bytes:
    return hashlib.blake2b(str(probe_id).encode("utf-8"), digest_size=8).digest()


def _is_blocking(value: object) -> bool:
    return isinstance(value, str) and value not in ("", "false", "null")


@dataclass(slots=True)
class _State:
    n: int = 0
    probes: set[bytes] = field(default_factory=set)
    counts: Counter[str] = field(default_factory=Counter)
    technique_probes: dict[str, set[bytes]] = field(default_factory=dict)
    techniques: Counter[str] = field(default_factory=Counter)
    first: str | None = None
    last: str | None = None
    artefact_uids: list[str] = field(default_factory=list)
    blocked_uids: list[str] = field(default_factory=list)

    def add(self, row: Mapping[str, Any]) -> None:
        self.n += 1
        probe = probe_hash(row.get("probe_id"))
        self.probes.add(probe)
        technique = row.get("x_technique")
        blocked = _is_blocking(row.get("blocking")) or (
            isinstance(technique, str) and technique not in NOT_BLOCKING
        )
        dns_artefact = bool(row.get("dns_hijack")) or bool(row.get("dns_bogon"))
        dns_artefact = dns_artefact or technique in ("dns-hijack", "dns-bogon")
        artefact = dns_artefact or bool(row.get("confirmed"))
        c = self.counts
        judged = not row.get("control_failure")  # shares are of judged measurements only
        c["blocked"] += blocked and judged
        c["accessible"] += row.get("accessible") is True and judged
        c["down"] += row.get("blocking") is False and row.get("accessible") is False and judged
        c["control_failure"] += not judged
        c["confirmed"] += bool(row.get("confirmed"))
        c["dns_artefact"] += dns_artefact
        c["throttled"] += technique == "throttled" and judged
        if blocked and isinstance(technique, str):
            self.techniques[technique] += 1
            self.technique_probes.setdefault(technique, set()).add(probe)
        seen = row.get("measurement_start_time") or row.get("day")
        if isinstance(seen, str):
            self.first = seen if self.first is None or seen < self.first else self.first
            self.last = seen if self.last is None or seen > self.last else self.last
        uid = row.get("measurement_uid")
        if isinstance(uid, str) and uid:
            if artefact and len(self.artefact_uids) < MAX_WITNESSES:
                self.artefact_uids.append(uid)
            elif blocked and len(self.blocked_uids) < MAX_WITNESSES:
                self.blocked_uids.append(uid)

    def to_counts(self) -> CellCounts:
        c = self.counts
        return CellCounts(
            n_measurements=self.n,
            n_probes=len(self.probes),
            n_blocked=c["blocked"],
            n_accessible=c["accessible"],
            n_down=c["down"],
            n_control_failure=c["control_failure"],
            n_confirmed=c["confirmed"],
            n_dns_artefact=c["dns_artefact"],
            n_throttled=c["throttled"],
            max_technique_probes=max((len(p) for p in self.technique_probes.values()), default=0),
        )

    def dominant(self) -> str | None:
        if not self.techniques:
            return None
        return min(self.techniques.items(), key=lambda kv: (-kv[1], kv[0]))[0]


class CellAccumulator:
    """Feed rows one at a time (``add``), read cells at any point (``cells``)."""

    def __init__(self, keys: tuple[str, ...] = DEFAULT_KEYS, thresholds: Thresholds | None = None) -> None:
        if not keys:
            raise ValueError("at least one grouping key is needed")
        self.keys = keys
        self.thresholds = thresholds or Thresholds()
        self._cells: dict[tuple[Any, ...], _State] = {}

    def add(self, row: Mapping[str, Any]) -> None:
        key = tuple(row.get(k) for k in self.keys)
        state = self._cells.get(key)
        if state is None:
            state = self._cells[key] = _State()
        state.add(row)

    def extend(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            self.add(row)

    def cells(self) -> list[Cell]:
        out = []
        for key, st in self._cells.items():
            out.append(
                Cell.from_counts(
                    tuple(zip(self.keys, key, strict=True)),
                    st.to_counts(),
                    thresholds=self.thresholds,
                    dominant_technique=st.dominant(),
                    first_seen=st.first,
                    last_seen=st.last,
                    witnesses=[*st.artefact_uids, *st.blocked_uids],
                )
            )
        return out


def aggregate(
    rows: Iterable[Mapping[str, Any]],
    keys: tuple[str, ...] = DEFAULT_KEYS,
    thresholds: Thresholds | None = None,
) -> list[Cell]:
    """All cells of ``rows``, in first-seen order."""
    acc = CellAccumulator(keys, thresholds)
    acc.extend(rows)
    return acc.cells()
