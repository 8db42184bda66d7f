"""The collector's settings, as the CLI and tests pass them."""

from __future__ import annotations

import dataclasses
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Settings:
    store: str = "reachwatch.duckdb"  # a DuckDB path or http://HOST:8123/DB
    asn_db: Path | None = None
    country_db: Path | None = None
    max_body: int = 16 * 1024 * 1024  # bytes
    max_pending: int = 20_000  # measurements waiting for a commit before 503
    rate: float = 50.0  # measurements per second per network; 0 disables
    burst: float = 5_000.0
    admin_token: str | None = None
    ingest_workers: int = 0  # processes staging big batches (`reachwatch serve`: one per core)
    journal: bool = True  # small groups acknowledged from a journal beside a DuckDB file
