"""The QA-emulated OONI measurements (exact) and the real ones (agreement printed)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from reachwatch.verdict import decide

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "ooni"
pytestmark = [
    pytest.mark.shared_data,
    pytest.mark.skipif(not DATA.is_dir(), reason=f"shared data not found at {DATA}"),
]


def _index(name: str) -> dict[int, dict[str, str]]:
    with (DATA / "index.csv").open(newline="") as handle:
        return {int(r["line"]): r for r in csv.DictReader(handle) if r["file"] == name}


def test_qa_emulated_all_reproduced() -> None:
    index = _index("measurements_qa_emulated.jsonl")
    got, expected = {}, {}
    with (DATA / "measurements_qa_emulated.jsonl").open() as handle:
        for number, line in enumerate(handle, start=1):
            v = decide(json.loads(line))
            row = index[number]
            got[number] = (v.blocking, v.accessible, v.dns_consistency)
            expected[number] = (
                json.loads(row["qa_expected_blocking"]),
                json.loads(row["qa_expected_accessible"]),
                row["qa_expected_dns_consistency"] or None,
            )
    assert len(got) == 25
    assert got == expected


def test_real_measurements_agreement() -> None:
    """Prints (with -s) how often we agree with the probe's own blocking/accessible."""
    total = agree = 0
    with (DATA / "measurements_real.jsonl").open() as handle:
        for number, line in enumerate(handle, start=1):
            m = json.loads(line)
            if m.get("test_name") != "web_connectivity":
                continue
            v = decide(m)
            tk = m.get("test_keys") or {}
            same = (v.blocking, v.accessible) == (tk.get("blocking"), tk.get("accessible"))
            total, agree = total + 1, agree + same
            print(f"line {number} v{m.get('test_version')}: ours {v.blocking!r}/{v.accessible!r} ({v.x_rule}) "
                  f"probe {tk.get('blocking')!r}/{tk.get('accessible')!r} {'ok' if same else 'DIFF'}")  # fmt: skip
            assert v.x_rule
    print(f"agreement with the probe: {agree}/{total}")
    assert total > 0
