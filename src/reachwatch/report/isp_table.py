"""The per-ISP evidence table on a terminal: one row per (target, network) from aggregated cells
(``reachwatch.aggregate``), with the state, the method, the blocked share with its 95% interval
and how many distinct probes and measurements it rests on."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rich.console import Console
from rich.table import Table


def _asn_number(asn: str) -> int:
    digits = asn.removeprefix("AS")
    return int(digits) if digits.isdigit() else 0


def render_cells(
    records: Iterable[Mapping[str, Any]], console: Console | None = None, title: str = ""
) -> None:
    """Print ``records`` (cells grouped by probe_cc, probe_asn, domain) as the per-ISP table."""
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
