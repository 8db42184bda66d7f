"""Synchronous SQL readers for analysis, reports and the dashboard (the collector's store is async).

A :class:`Reader` runs one generated statement (``?`` placeholders) and returns tuples. DuckDB:
a file opened by this process, or the collector's own connection (one cursor per thread).
ClickHouse: its HTTP interface, parameters rendered as escaped literals as the store does.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import duckdb
import httpx
import orjson

from reachwatch.errors import UserError
from reachwatch.store.query import Dialect

if TYPE_CHECKING:
    from reachwatch.store.journal import JournaledStore

log = logging.getLogger(__name__)


class Reader(Protocol):
    dialect: Dialect

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
    def close(self) -> None: ...


class DuckDBReader:
    dialect: Dialect = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection, *, owned: bool = False) -> None:
        self.con = con
        self._owned = owned
        self._local = threading.local()

    @classmethod
    def open(cls, path: str, *, read_only: bool = True) -> DuckDBReader:
        if not os.path.isfile(path):
            raise UserError(
                "no such DuckDB file", where=path, fix="pass the file `reachwatch serve --db` writes"
            )
        store_left_journal_or_warn(path)
        try:
            return cls(duckdb.connect(path, read_only=read_only), owned=True)
        except duckdb.Error as exc:
            raise UserError(f"cannot open DuckDB file: {exc}", where=path) from exc

    def cursor(self) -> duckdb.DuckDBPyConnection:
        cur = getattr(self._local, "cur", None)
        if cur is None:
            cur = self._local.cur = self.con.cursor()
        return cur

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.cursor().execute(sql, list(params)).fetchall()

    def close(self) -> None:
        if self._owned:
            self.con.close()


class ClickHouseReader:
    dialect: Dialect = "clickhouse"

    def __init__(self, url: str) -> None:
        from reachwatch.store.clickhouse_url import Location

        where = Location.parse(url)
        self.db = where.db
        self._client = httpx.Client(base_url=where.base, timeout=300.0, auth=where.auth)
        self.url = f"{where.shown}{where.db}"

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        from reachwatch.store.clickhouse_values import render

        text = render(sql, params) + " FORMAT JSONCompact"
        query = {"database": self.db, "output_format_json_quote_64bit_integers": "0"}
        try:
            resp = self._client.post("", params=query, content=text.encode())
        except httpx.HTTPError as exc:
            raise UserError(f"cannot reach ClickHouse: {exc}", where=self.url) from exc
        if resp.status_code != 200:
            raise RuntimeError(f"ClickHouse error {resp.status_code}: {resp.text[:500]}")
        return [tuple(r) for r in orjson.loads(resp.content)["data"]]

    def close(self) -> None:
        self._client.close()


def open_reader(location: str) -> Reader:
    """A reader for a ``*.duckdb`` path or an ``http://host:8123/db`` ClickHouse URL."""
    if location.startswith(("http://", "https://")):
        return ClickHouseReader(location)
    return DuckDBReader.open(location)


def store_left_journal_or_warn(path: str) -> None:
    """What a killed collector left in its journal goes into the file before it is read."""
    from reachwatch.store.journal_left import store_left_journal

    try:
        count = store_left_journal(path)
    except Exception as exc:  # read what the file holds; say what it lacks and how to add it
        log.warning(
            "%s: the collector's journal beside it holds measurements not yet in it, and storing "
            "them failed (%s: %.200s); `reachwatch serve --db %s` stores them when it starts",
            path,
            type(exc).__name__,
            exc,
            path,
        )
        return
    if count:
        log.warning("%s: stored %d measurements a stopped collector left in its journal", path, count)


class SettlingReader:
    """A reader over a journaled store that first stores what the journal holds, so that it reads
    every measurement acknowledged (:mod:`reachwatch.store.journal`). That takes the store's event
    loop: from that loop's own thread (where it cannot wait) it reads what is stored already."""

    def __init__(self, reader: Reader, store: JournaledStore) -> None:
        self.reader = reader
        self.store = store
        self.dialect = reader.dialect

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        loop = self.store.loop
        if self.store.held and loop is not None and loop.is_running():
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is not loop:
                try:
                    asyncio.run_coroutine_threadsafe(self.store.settle(), loop).result(timeout=60)
                except Exception as exc:  # the pages show what is stored; the API's reads answer 503
                    log.error("store write failed: %s: %.300s", type(exc).__name__, exc)
        return self.reader.rows(sql, params)

    def close(self) -> None:
        self.reader.close()


def reader_for_store(store: object) -> Reader:
    """A reader over an opened collector store, sharing its DuckDB connection (cursor per thread)."""
    from reachwatch.store.clickhouse import ClickHouseStore
    from reachwatch.store.duckdb import DuckDBStore
    from reachwatch.store.journal import JournaledStore

    if isinstance(store, JournaledStore):
        return SettlingReader(reader_for_store(store.inner), store)
    if isinstance(store, DuckDBStore):
        con = store._con
        if con is None:
            raise RuntimeError("store not opened")
        return DuckDBReader(con)
    if isinstance(store, ClickHouseStore):
        return ClickHouseReader(f"{store.base.rstrip('/')}/{store.db}")
    raise TypeError(f"no reader for {type(store).__name__}")
