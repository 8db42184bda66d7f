"""``analyze_store``: verdicts and fingerprints written back, cells refreshed, incremental,
idempotent, resumable - the same behaviour and the same results on DuckDB and on ClickHouse."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from reachwatch.analyze import analyze_store
from reachwatch.analyze.clickhouse_backend import ClickHouseAnalysis
from reachwatch.analyze.duckdb_backend import DuckDBAnalysis
from reachwatch.collector.analysis import verdict
from reachwatch.fingerprints import Fingerprint
from reachwatch.store.readers import open_reader
from store.rows import fill, row

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "verdict"))
import verdict_builders as vb

FPS = [
    Fingerprint(name="local.pk_order", location="body", pattern_type="contains", pattern="Access Denied By Order", scope="nat"),
    Fingerprint(name="local.pk_dns", location="dns", pattern_type="full", pattern=vb.OTHER_IP, scope="isp"),
]  # fmt: skip


def measurements() -> list[tuple[str, dict[str, Any]]]:
    url = "https://example.org/"
    return [
        ("ok", vb.single(url, {}, {})),
        ("blockpage", vb.single("http://example.org/", {"body": vb.BLOCKPAGE, "code": 403}, {})),
        ("hijack", vb.single(url, {"addrs": (vb.OTHER_IP,), "tcp_failure": "connection_refused"}, {})),
        ("reset", vb.single(url, {"tls_failure": "connection_reset"}, {})),
    ]


def make_store(location: str) -> str:
    rows = []
    for i, (kind, m) in enumerate(measurements() * 3):
        # stored with no verdict at all: analyze must compute it
        rows.append(row(i, domain="example.org", probe=f"p{i % 3}-{kind}", blocking=None, accessible=None,
                        failure=True, measurement=m))  # fmt: skip
    fill(location, rows)
    return location


def table(location: str, what: str) -> list[tuple[Any, ...]]:
    """``measurements`` (verdict columns), ``state`` (fingerprints), ``cells`` or ``dirty``, as
    plain values in a fixed order, whatever the backend."""
    reader = open_reader(location)
    final = " FINAL" if reader.dialect == "clickhouse" else ""
    day = "toString(day)" if reader.dialect == "clickhouse" else "CAST(day AS VARCHAR)"
    sql = {
        "measurements": "SELECT measurement_uid, blocking, accessible, x_technique, x_rule, anomaly, failure, "
        "confirmed FROM measurements ORDER BY measurement_uid",
        "state": f"SELECT measurement_uid, fingerprint FROM analysis_state{final} ORDER BY measurement_uid",
        "cells": f"SELECT probe_cc, probe_asn, domain, {day}, state, rule_id, n_measurements, n_probes, "
        f"blocked_share, dominant_technique, first_seen, last_seen, witnesses FROM cells{final} "
        "ORDER BY probe_cc, probe_asn, domain, day",
        "dirty": "SELECT count(*) FROM cells_dirty",
    }[what]
    try:
        rows = reader.rows(sql)
    finally:
        reader.close()
    if what == "measurements":  # ClickHouse booleans are UInt8
        return [(*r[:2], None if r[2] is None else bool(r[2]), *r[3:5], *map(bool, r[5:])) for r in rows]
    return [tuple(int(v) if what == "dirty" else v for v in r) for r in rows]


@pytest.mark.parametrize("workers", [1, 2])
def test_analyze_writes_verdicts_fingerprints_and_cells(store_location: str, workers: int) -> None:
    location = make_store(store_location)
    stats = analyze_store(location, fingerprints=FPS, workers=workers)
    assert stats.measurements == 12 and stats.reverdicted == 12 and stats.cells == 1
    got = table(location, "measurements")
    # the verdict columns are exactly what the collector stores at ingest
    expected = {m["input"] + kind: verdict(m) for kind, m in measurements()}
    assert {(r[1], r[3]) for r in got} == {(v.blocking, v.x_technique) for v in expected.values()}
    for uid, blocking, accessible, technique, rule, anomaly, failure, _ in got:
        assert any(
            (blocking, accessible, technique, rule, anomaly, failure)
            == (v.blocking, v.accessible, v.x_technique, v.x_rule, v.anomaly, v.failure)
            for v in expected.values()
        ), uid
    state = dict(table(location, "state"))
    confirmed = {r[0] for r in got if r[7]}
    assert {state[u] for u in confirmed} == {"local.pk_order", "local.pk_dns"} and len(confirmed) == 6
    ((*_, cell_state, rule, n, _probes, _share, _tech, _first, _last, witnesses),) = table(location, "cells")
    assert (cell_state, rule, n) == ("blocked", "cell.fingerprint", 12) and witnesses.startswith("[")
    assert table(location, "dirty") == [(0,)]


def test_analyze_is_incremental_and_idempotent(store_location: str) -> None:
    location = make_store(store_location)
    analyze_store(location, fingerprints=FPS, workers=1)
    before = table(location, "cells")
    again = analyze_store(location, fingerprints=FPS, workers=1)
    assert (again.measurements, again.cells) == (0, 0)
    assert table(location, "cells") == before
    # another fingerprint set: fingerprints redone, verdicts kept
    fewer = analyze_store(location, fingerprints=FPS[1:], workers=1)
    assert fewer.measurements == 12 and fewer.reverdicted == 0
    assert "local.pk_order" not in {r[1] for r in table(location, "state")}
    assert len(table(location, "state")) == 12
    # new measurements arrive: only they are analysed
    fill(location, [row(1000 + i, domain="new.org", probe=f"n{i}", blocking=None, accessible=None,
                        measurement=vb.single("https://new.org/", {}, {})) for i in range(2)])  # fmt: skip
    new = analyze_store(location, fingerprints=FPS[1:], workers=1)
    assert (new.measurements, new.reverdicted, new.cells) == (2, 2, 1)
    assert [c[4] for c in table(location, "cells") if c[2] == "new.org"] == ["ok"]


def test_interrupted_run_resumes(store_location: str, monkeypatch: pytest.MonkeyPatch) -> None:
    location = make_store(store_location)

    def boom(self: object) -> int:
        raise KeyboardInterrupt

    for backend in (DuckDBAnalysis, ClickHouseAnalysis):
        monkeypatch.setattr(backend, "refresh", boom)
    with pytest.raises(KeyboardInterrupt):
        analyze_store(location, fingerprints=FPS, workers=1)
    assert table(location, "dirty")[0][0] > 0
    monkeypatch.undo()
    resumed = analyze_store(location, fingerprints=FPS, workers=1)
    assert resumed.measurements == 0 and resumed.cells == 1


@pytest.mark.clickhouse
def test_duckdb_and_clickhouse_give_the_same_results(tmp_path: Path, clickhouse_url: str) -> None:
    locations = [make_store(str(tmp_path / "m.duckdb")), make_store(f"{clickhouse_url}/same_results")]
    results = []
    for location in locations:
        analyze_store(location, fingerprints=FPS, workers=2)
        results.append([table(location, what) for what in ("measurements", "state", "cells")])
    assert results[0] == results[1]


def test_bad_locations_are_user_errors(tmp_path: Path) -> None:
    from reachwatch.errors import UserError

    with pytest.raises(UserError, match="no such DuckDB file"):
        analyze_store(str(tmp_path / "absent.duckdb"), fingerprints=FPS)
    with pytest.raises(UserError, match="cannot reach ClickHouse"):
        analyze_store("http://127.0.0.1:9/db", fingerprints=FPS, workers=1)
