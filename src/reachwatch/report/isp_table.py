"""The per-ISP evidence table: one row per (network, target) with the verdict and its method.

Rows come from measurements whose verdict keys the probe already filled; a measurement without
them (for instance one from another probe) is decided here with the same rules.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from reachwatch.errors import UserError


@dataclass(frozen=True, slots=True)
class IspRow:
    network: str
    asn: str
    cc: str
    target: str
    blocking: str | bool | None
    accessible: bool | None
    technique: str | None
    rule: str | None

    @property
    def verdict(self) -> str:
        if self.blocking is None:
            return "unknown"
        if self.blocking is False:
            return "accessible" if self.accessible else "not accessible (not censorship)"
        return f"blocked ({self.blocking})"


def read_measurements(path: Path) -> Iterator[dict[str, Any]]:
    """Stream JSON lines; a bad line is an error naming file and line."""
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read: {exc.strerror}", where=str(path)) from None
    with handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"not JSON: {exc.msg}", where=f"{path}:{lineno}") from None
            if not isinstance(value, dict):
                raise UserError("not a JSON object", where=f"{path}:{lineno}")
            yield value


def _verdict_keys(measurement: Mapping[str, Any]) -> Mapping[str, Any]:
    keys = measurement.get("test_keys") or {}
    if "x_technique" in keys:
        return keys
    from reachwatch.verdict import decide

    return decide(measurement).as_test_keys()


def isp_rows(measurements: Iterable[Mapping[str, Any]]) -> list[IspRow]:
    rows = []
    for m in measurements:
        if m.get("test_name") != "web_connectivity":
            continue
        keys = _verdict_keys(m)
        rows.append(
            IspRow(
                network=str(m.get("probe_network_name") or ""),
                asn=str(m.get("probe_asn") or ""),
                cc=str(m.get("probe_cc") or ""),
                target=str(m.get("input") or ""),
                blocking=keys.get("blocking"),
                accessible=keys.get("accessible"),
                technique=keys.get("x_technique"),
                rule=keys.get("x_rule"),
            )
        )
    rows.sort(key=lambda r: (r.target, _asn_number(r.asn), r.network))
    return rows


def _asn_number(asn: str) -> int:
    digits = asn.removeprefix("AS")
    return int(digits) if digits.isdigit() else 0


def render(rows: list[IspRow], console: Console | None = None, title: str = "Per-ISP evidence") -> None:
    table = Table(title=title, show_lines=False)
    for column in ("target", "ISP", "ASN", "CC", "verdict", "technique", "rule"):
        table.add_column(column, no_wrap=column != "ISP", overflow="fold")
    previous = None
    for r in rows:
        style = "red" if r.blocking not in (False, None) else ("yellow" if r.blocking is None else "")
        table.add_row(
            r.target if r.target != previous else "",
            r.network,
            r.asn,
            r.cc,
            r.verdict,
            r.technique or "-",
            r.rule or "-",
            style=style,
        )
        previous = r.target
    console = console or Console()
    if not console.is_terminal:  # a log or a pipe: do not squeeze the evidence into 80 columns
        console = Console(file=console.file, width=max(console.width, 160))
    console.print(table)


def render_cells(
    records: Iterable[Mapping[str, Any]], console: Console | None = None, title: str = ""
) -> None:
    """The per-ISP evidence table from aggregated cells (``reachwatch.aggregate``): one row per
    (target, network) with the state, the method, the blocked share with its 95% interval and
    how many distinct probes and measurements it rests on."""
    table = Table(title=title or "Per-ISP evidence")
    for column in (
        "target",
        "ISP",
        "ASN",
        "state",
        "technique",
        "blocked share (95% CI)",
        "probes",
        "measurements",
    ):
        table.add_column(column, no_wrap=column != "ISP", overflow="fold")
    previous = None
    ordered = sorted(records, key=lambda r: (str(r.get("domain")), _asn_number(str(r.get("probe_asn")))))
    for r in ordered:
        state = str(r.get("state"))
        share, low, high = r.get("blocked_share"), r.get("blocked_low"), r.get("blocked_high")
        interval = f"{share:.0%} ({low:.0%}-{high:.0%})" if None not in (share, low, high) else "-"
        style = {"blocked": "red", "likely_blocked": "red", "impaired": "yellow", "insufficient": "dim"}.get(
            state, ""
        )
        domain = str(r.get("domain"))
        table.add_row(
            domain if domain != previous else "",
            str(r.get("probe_network_name") or ""),
            str(r.get("probe_asn")),
            state,
            str(r.get("dominant_technique") or "-"),
            interval,
            str(r.get("n_probes")),
            str(r.get("n_measurements")),
            style=style,
        )
        previous = domain
    console = console or Console()
    if not console.is_terminal:
        console = Console(file=console.file, width=max(console.width, 160))
    console.print(table)
