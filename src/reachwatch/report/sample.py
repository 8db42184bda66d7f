"""Synthetic but realistic report data, for tests, demos and looking at the pages.

Six networks in Pakistan (documentation ASNs 64501-64506) x three sites x 30 days of July 2018,
with an election on the 25th. The numbers are invented; the states are decided by the real rules
(:func:`reachwatch.aggregate.decide_state`) from invented counts, so they are consistent.

- awamiworkersparty.org: blocked by five networks with four techniques, reachable on the sixth;
  AS64504 has an insufficient stretch (one probe, 18-22 July), AS64505 no data at all 10-13 July.
- dawn.com: reachable, impaired on two networks around the election.
- pakvoter.example: down everywhere for three days (the site itself, not blocking).
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from reachwatch.aggregate import CellCounts, decide_state

START = dt.date(2018, 7, 1)
DAYS = 30
ELECTION = dt.date(2018, 7, 25)
NETWORKS = {
    "AS64501": "Indus Fibre",
    "AS64502": "Karakoram Mobile",
    "AS64503": "Ravi Broadband",
    "AS64504": "Sindh Net",
    "AS64505": "Khyber Wireless",
    "AS64506": "Margalla Cable",
}
BLOCKED_DOMAIN = "awamiworkersparty.org"
DOMAINS = (BLOCKED_DOMAIN, "dawn.com", "pakvoter.example")
# (asn -> technique, first blocked day)
PLAN = {
    "AS64501": ("dns-hijack", 1),
    "AS64502": ("tls-reset", 10),
    "AS64503": ("http-blockpage", 1),
    "AS64504": ("tls-timeout", 5),
    "AS64505": ("dns-hijack", 3),
}


def uid(day: dt.date, asn: str, rng: random.Random) -> str:
    tail = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(12))
    return f"{day:%Y%m%d}T{rng.randrange(24):02d}{rng.randrange(60):02d}{rng.randrange(60):02d}Z_webconnectivity_PK_{asn[2:]}_n1_{tail}"


def _record(counts: CellCounts, technique: str | None, **keys: Any) -> dict[str, Any]:
    state, _rule = decide_state(counts)
    low, high = counts.blocked_interval()
    return {
        **keys,
        "probe_cc": "PK",
        "state": state,
        "n_measurements": counts.n_measurements,
        "n_probes": counts.n_probes,
        "blocked_share": round(counts.blocked_share, 4),
        "ci_low": round(low, 4),
        "ci_high": round(high, 4),
        "technique": technique if counts.n_blocked else None,
    }


def _day_counts(
    asn: str, domain: str, i: int, day: dt.date, rng: random.Random
) -> tuple[CellCounts, str | None]:
    n = rng.randint(6, 18)
    probes = rng.randint(2, 5)
    if asn == "AS64504" and domain == BLOCKED_DOMAIN and 17 <= i <= 21:
        n, probes = rng.randint(1, 3), 1
    technique, since = PLAN.get(asn, (None, 99))
    blocked = down = throttled = 0
    if domain == BLOCKED_DOMAIN and technique and i + 1 >= since:
        blocked = n - rng.choice((0, 0, 0, 1))
    elif domain == BLOCKED_DOMAIN and technique and i + 1 >= since - 2:
        blocked = rng.randint(1, n // 3)
    elif domain == "dawn.com" and asn in ("AS64502", "AS64505") and abs((day - ELECTION).days) <= 1:
        technique, throttled = "throttled", rng.randint(n // 3, n // 2)
        blocked = rng.randint(1, 2)
    elif domain == "pakvoter.example" and 13 <= i <= 15:
        down = n
    counts = CellCounts(
        n_measurements=n,
        n_probes=probes,
        n_blocked=blocked,
        n_accessible=n - blocked - down - throttled,
        n_down=down,
        n_confirmed=blocked if technique == "http-blockpage" else 0,
        n_dns_artefact=blocked if technique == "dns-hijack" else 0,
        n_throttled=throttled,
        max_technique_probes=probes if blocked > n // 2 else min(probes, 1),
    )
    return counts, technique


def sample_data(seed: int = 2018) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(summary rows, cells, events) as plain JSON-able dicts."""
    rng = random.Random(seed)
    cells: list[dict[str, Any]] = []
    summary: list[dict[str, Any]] = []
    for domain in DOMAINS:
        for asn, name in NETWORKS.items():
            total: dict[str, int] = {}
            technique: str | None = None
            witnesses: list[str] = []
            first = last = None
            for i in range(DAYS):
                day = START + dt.timedelta(days=i)
                if asn == "AS64505" and 9 <= i <= 12:
                    continue  # no data: the probes there were offline
                counts, tech = _day_counts(asn, domain, i, day, rng)
                day_uids = [uid(day, asn, rng) for _ in range(min(3, counts.n_blocked))]
                seen = (
                    f"{day}T0{rng.randrange(10)}:1{rng.randrange(10)}:00Z",
                    f"{day}T2{rng.randrange(4)}:4{rng.randrange(10)}:00Z",
                )
                cells.append(
                    _record(counts, tech, probe_asn=asn, probe_network_name=name, domain=domain, day=day.isoformat(),
                            first_seen=seen[0], last_seen=seen[1], witnesses=day_uids)
                )  # fmt: skip
                first, last = first or seen[0], seen[1]
                if counts.n_blocked:
                    technique = technique or tech
                    witnesses.extend(day_uids[: 5 - len(witnesses)])
                for k, v in vars_of(counts).items():
                    total[k] = total.get(k, 0) + v
            total["n_probes"] = min(12, total["n_probes"] // 8 + 2)
            total["max_technique_probes"] = (
                total["n_probes"] if total["n_blocked"] * 2 > total["n_measurements"] else 1
            )
            period_counts = CellCounts(**total)
            summary.append(
                _record(period_counts, technique, probe_asn=asn, probe_network_name=name, domain=domain,
                        first_seen=first, last_seen=last, witnesses=witnesses)
            )  # fmt: skip
    events = [
        {"date": ELECTION.isoformat(), "label": "General election", "description": "Polling day, national and provincial assemblies"},
        {"date": "2018-07-13", "label": "Leader's return", "end_date": "2018-07-14", "description": "Arrest on arrival; rallies"},
    ]  # fmt: skip
    return summary, cells, events


def vars_of(counts: CellCounts) -> dict[str, int]:
    return {name: getattr(counts, name) for name in CellCounts.__dataclass_fields__}
