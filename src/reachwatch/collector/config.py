"""The collector's settings, as the CLI and tests pass them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from reachwatch.collector.ratelimit import DEFAULT_BURST, DEFAULT_RATE, LOOPBACK
from reachwatch.store import default_journal

#: Measurements waiting for a commit (those a journal holds included) before a 503: as many as the
#: journal holds (``store.journal.MAX_HELD``), ~3 s of median batches at 20,000/s
MAX_PENDING = 60_000


@dataclasses.dataclass(frozen=True)
class Settings:
    store: str = "reachwatch.duckdb"  # a DuckDB path or http://HOST:8123/DB
    asn_db: Path | None = None
    country_db: Path | None = None
    max_body: int = 16 * 1024 * 1024  # bytes
    max_pending: int = MAX_PENDING
    rate: float = DEFAULT_RATE  # measurements per second per network; 0 disables
    burst: float = DEFAULT_BURST
    #: networks whose submitters are not rate-limited, comma-separated ("" for none): loopback
    rate_exempt: str = LOOPBACK
    admin_token: str | None = None
    ingest_workers: int = 0  # processes staging big batches (`reachwatch serve`: one per core)
    journal: bool = True  # small groups acknowledged once in a journal (store/journal.py)
    journal_dir: str | None = None  # default: beside a DuckDB file; none for ClickHouse unless given
    #: proxies (addresses or networks, comma-separated, or "*") whose X-Forwarded-For names the
    #: submitter: the collector behind a reverse proxy that terminates TLS
    trusted_proxies: str | None = None
    tls_cert: Path | None = None  # HTTPS without a proxy: the certificate chain (PEM)...
    tls_key: Path | None = None  # ...and its private key
    #: what a DuckDB store may hold in memory (``2GB``); None: a quarter of the machine's
    db_memory: str | None = None
    #: Citizen Lab test lists (global.csv, <cc>.csv, or directories of them) for OONI's check-in
    test_lists: tuple[Path, ...] = ()
    #: the control helper's URL, announced to OONI probes as their web-connectivity test helper
    test_helper: str | None = None

    def journal_location(self) -> str | None:
        """The journal's directory, or None for none."""
        if not self.journal:
            return None
        return self.journal_dir or default_journal(self.store)
