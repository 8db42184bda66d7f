"""Storage of measurements: flat analysis columns plus the raw measurement (zstd).

:class:`Store` is what the collector needs; :func:`open_store` picks the backend from a location:
a ``*.duckdb`` path or an ``http://host:8123/db`` ClickHouse URL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Collection, Sequence
from typing import Any, Protocol

from reachwatch.store.query import Filters, ListOrder
from reachwatch.store.schema import Analysis, Row, RowColumns

__all__ = ["Filters", "ListOrder", "Store", "default_journal", "open_store"]


class Store(Protocol):
    """A measurement store. Every method is safe to call from the event loop."""

    async def check(self) -> None:
        """Reach the store, loading nothing: a UserError saying why it cannot be opened."""
        ...

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def secret(self) -> bytes:
        """The collector's persistent secret (report ids, probe id hashes): created once, kept."""
        ...

    async def identity(self) -> str:
        """The keyed hash of this store's ``content_hash`` (:data:`~reachwatch.store.schema.IDENTITIES`):
        recorded with the secret, so one store never mixes two (a resend would be stored twice)."""
        ...

    async def existing(
        self, content_hashes: Sequence[str], days: Collection[dt.date] | None = None
    ) -> dict[str, str]:
        """content_hash -> measurement_uid for the hashes already stored. ``days``: the
        ``measurement_start_day`` of the measurements the hashes are of, if known (a stored
        duplicate has the same content, so the same day): only those days need be read."""
        ...

    async def insert(self, rows: Sequence[Row] | RowColumns) -> None:
        """Store rows durably; returns only once they are committed."""
        ...

    async def get_raw(self, uid: str) -> bytes | None: ...
    async def search(
        self, f: Filters, limit: int, offset: int, order: ListOrder = ...
    ) -> tuple[int, list[dict[str, Any]]]: ...
    async def aggregate(self, f: Filters, axes: list[str], grain: str = "day") -> list[dict[str, Any]]:
        """Counts by ``axes``, the time axis by ``grain`` (``query.GRAINS``): each row the axes by
        name, then ``query.COUNTS``, in that order."""
        ...

    async def delete(self, uid: str) -> bool: ...
    def raw_batches(self, batch: int) -> AsyncIterator[list[tuple[str, bytes]]]:
        """Lists of (uid, raw) for re-analysis."""
        ...

    async def update_analysis(self, rows: Sequence[Analysis]) -> None:
        """The rules' verdict columns of ``rows`` (``confirmed`` false: no fingerprints here)."""
        ...

    @property
    def update_rows(self) -> int:
        """How many rows a re-analysis gives :meth:`update_analysis` at once at most: what one
        write of the store takes best."""
        ...

    async def forget_findings(self) -> None:
        """Forget what ``reachwatch analyze`` judged each row by, so that it redoes them all."""
        ...

    @property
    def verdicts_at_ingest(self) -> bool:
        """Whether the collector judges each measurement before storing it, rather than storing it
        unanalysed and writing its verdict after the commit: for a store whose updates cost far
        more than its inserts (ClickHouse, where every update rewrites whole parts)."""
        ...


def default_journal(location: str) -> str | None:
    """Where the collector keeps its journal for ``location``: beside a DuckDB file
    (``FILE.duckdb.journal``); none for ClickHouse (no local file to put it beside)."""
    if location.startswith(("http://", "https://")):
        return None
    return f"{location}.journal"


def open_store(location: str, *, journal: str | None = None, memory_limit: str | None = None) -> Store:
    """A store for ``location`` (not yet opened: ``await store.open()``), behind a journal in the
    directory ``journal`` if given (:mod:`reachwatch.store.journal`). ``memory_limit``: what a
    DuckDB store may hold in memory (default: a quarter of the machine's)."""
    store: Store
    if location.startswith(("http://", "https://")):
        from reachwatch.store.clickhouse import ClickHouseStore

        store = ClickHouseStore(location)
    else:
        from reachwatch.store.duckdb import DuckDBStore

        store = DuckDBStore(location, memory_limit=memory_limit)
    if journal is None:
        return store
    from reachwatch.store.journal import JournaledStore

    return JournaledStore(store, journal)
