"""``analyze_file``: verdicts and fingerprints written back, cells refreshed, incremental, idempotent."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from reachwatch.analyze import analyze_file
from reachwatch.fingerprints import Fingerprint
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


def make_db(tmp_path: Path) -> str:
    path = str(tmp_path / "m.duckdb")
    rows = []
    for i, (kind, m) in enumerate(measurements() * 3):
        # stored with no verdict at all: analyze must compute it
        rows.append(row(i, domain="example.org", probe=f"p{i % 3}-{kind}", blocking=None, accessible=None,
                        failure=True, measurement=m))  # fmt: skip
    fill(path, rows)
    return path


def table(path: str, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(path, read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("workers", [1, 2])
def test_analyze_writes_verdicts_fingerprints_and_cells(tmp_path: Path, workers: int) -> None:
    path = make_db(tmp_path)
    stats = analyze_file(path, fingerprints=FPS, workers=workers)
    assert stats.measurements == 12 and stats.reverdicted == 12 and stats.cells == 1
    rows = table(path, "SELECT m.blocking, m.x_technique, m.confirmed, s.fingerprint FROM measurements m "
                       "JOIN analysis_state s USING (measurement_uid) ORDER BY measurement_uid")  # fmt: skip
    kinds = {(r[0], r[1], r[2], r[3]) for r in rows}
    assert ("false", None, False, None) in kinds or any(r[0] == "false" for r in rows)
    assert any(r[2] and r[3] == "local.pk_order" for r in rows)
    assert any(r[2] and r[3] == "local.pk_dns" for r in rows)
    ((state, rule, n, witnesses),) = table(
        path, "SELECT state, rule_id, n_measurements, witnesses FROM cells"
    )
    assert (state, rule, n) == ("blocked", "cell.fingerprint", 12) and witnesses.startswith("[")
    assert table(path, "SELECT count(*) FROM cells_dirty") == [(0,)]


def test_analyze_is_incremental_and_idempotent(tmp_path: Path) -> None:
    path = make_db(tmp_path)
    analyze_file(path, fingerprints=FPS, workers=1)
    before = table(path, "SELECT * FROM cells")
    again = analyze_file(path, fingerprints=FPS, workers=1)
    assert (again.measurements, again.cells) == (0, 0)
    assert table(path, "SELECT * FROM cells") == before
    # another fingerprint set: fingerprints redone, verdicts kept
    fewer = analyze_file(path, fingerprints=FPS[1:], workers=1)
    assert fewer.measurements == 12 and fewer.reverdicted == 0
    assert not any(r[0] == "local.pk_order" for r in table(path, "SELECT fingerprint FROM analysis_state"))
    # new measurements arrive: only they are analysed
    fill(path, [row(1000 + i, domain="new.org", probe=f"n{i}", blocking=None, accessible=None,
                    measurement=vb.single("https://new.org/", {}, {})) for i in range(2)])  # fmt: skip
    new = analyze_file(path, fingerprints=FPS[1:], workers=1)
    assert (new.measurements, new.reverdicted, new.cells) == (2, 2, 1)
    assert table(path, "SELECT state FROM cells WHERE domain = 'new.org'") == [("ok",)]


def test_interrupted_run_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_db(tmp_path)
    from reachwatch.analyze import cells_table

    def boom(con: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cells_table, "refresh", boom)
    with pytest.raises(KeyboardInterrupt):
        analyze_file(path, fingerprints=FPS, workers=1)
    assert table(path, "SELECT count(*) FROM cells_dirty")[0][0] > 0
    monkeypatch.undo()
    resumed = analyze_file(path, fingerprints=FPS, workers=1)
    assert resumed.measurements == 0 and resumed.cells == 1
