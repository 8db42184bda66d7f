from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_fingerprints() -> Path:
    d = SHARED / "fingerprints"
    if not (d / "fingerprints_http.csv").is_file():
        pytest.skip(f"shared data not found at {d} (tests read ../shared/data beside the repo)")
    return d


@pytest.fixture(scope="session")
def shared_measurements() -> list[dict[str, Any]]:
    d = SHARED / "ooni"
    if not (d / "measurements_real.jsonl").is_file():
        pytest.skip(f"shared data not found at {d} (tests read ../shared/data beside the repo)")
    return [
        json.loads(line)
        for name in ("measurements_real.jsonl", "measurements_qa_emulated.jsonl")
        for line in (d / name).open(encoding="utf-8")
        if line.strip()
    ]
