"""ClickHouse: the verdict columns written back over stored rows (rows an older version left
unanalysed, a re-analysis) as few mutations as can be.

Each mutation makes a new version of every part of the table on 18.16, whatever its ``WHERE``, so a
write of verdicts is one: they go into a ``Join`` table of their own, which ``joinGet`` reads in
``ALTER TABLE ... UPDATE``, as ``reachwatch analyze`` does. The table is dropped once no mutation
reads it (a failed mutation is retried by 18.16 for ever).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson

from reachwatch.store.clickhouse_values import IN_LIST, as_clickhouse, chunks, literal
from reachwatch.store.schema import ANALYSIS_COLUMNS, COLUMNS, TABLE, Analysis

log = logging.getLogger(__name__)

#: Where those Join tables are made: ``joinGet`` in a mutation running in the background looks for
#: its table there on 18.16, and takes no database in the name
JOIN_DATABASE = "default"
#: The name of each Join table that carries a write's verdicts (:meth:`ClickHouseStore.update_analysis`)
JOIN_PREFIX = "reachwatch_verdicts_"
#: Random bytes in each Join table's name (hex), after the prefix and the database's name
JOIN_TOKEN_BYTES = 6
#: Seconds a write of verdicts waits for its mutation before it fails (its table then stays, to be
#: dropped once the mutation is done)
MUTATION_WAIT = 3600.0
#: Seconds after which a Join table no mutation reads is taken for left behind
JOIN_LEFT_AFTER = 600
#: The verdict columns of that table, as the measurements table has them
_JOIN_COLUMNS = ", ".join(f"{c.name} {c.clickhouse}" for c in COLUMNS if c.name in ANALYSIS_COLUMNS)


class Mutations:
    """The mutations of one database's table (writes of verdicts, and the wait for any), through
    ``query`` and ``rows`` (the store's)."""

    def __init__(
        self,
        db: str,
        query: Callable[..., Awaitable[bytes]],
        rows: Callable[[str], Awaitable[list[dict[str, Any]]]],
    ) -> None:
        self.db = db
        self._query = query
        self._rows = rows
        #: every Join table of a write of this database is named so, then a random token
        self.prefix = f"{JOIN_PREFIX}{db}_"
        self._said_no_join = False

    async def write_verdicts(self, rows: Sequence[Analysis]) -> None:
        """Set the verdict columns of ``rows``, ``confirmed = 0`` (the rules' verdict, without
        fingerprints) and ``analysed = 1`` in one mutation, then wait until it is done: the
        verdicts are inserted into a Join table of their own in :data:`JOIN_DATABASE`, which
        ``joinGet`` reads. A user who may not create it there gets one mutation per
        :data:`IN_LIST` uids instead (:meth:`_in_lists`)."""
        if not rows:
            return
        await self.drop_left()
        name = f"{self.prefix}{secrets.token_hex(JOIN_TOKEN_BYTES)}"
        join = f"{JOIN_DATABASE}.{name}"
        try:
            await self._query(
                f"CREATE TABLE {join} (measurement_uid String, {_JOIN_COLUMNS}) "
                "ENGINE = Join(ANY, LEFT, measurement_uid)"
            )
        except RuntimeError as exc:
            if not self._said_no_join:  # once: every write of this collector would say it again
                self._said_no_join = True
                log.warning(
                    "cannot make a table in ClickHouse's %r database (%s): verdicts written with one "
                    "mutation per %d rows instead of one per write",
                    JOIN_DATABASE,
                    " ".join(str(exc).split())[:200],
                    IN_LIST,
                )
            await self._in_lists(rows)
            return
        try:
            body = b"\n".join(
                orjson.dumps(
                    {
                        "measurement_uid": a.measurement_uid,
                        **{n: as_clickhouse(getattr(a, n)) for n in ANALYSIS_COLUMNS},
                    }
                )
                for a in rows
            )
            await self._query(f"INSERT INTO {join} FORMAT JSONEachRow", data=body)
            sets = ", ".join(f"{n} = joinGet('{name}', '{n}', measurement_uid)" for n in ANALYSIS_COLUMNS)
            await self._query(
                f"ALTER TABLE {self.db}.{TABLE} UPDATE {sets}, confirmed = 0, analysed = 1 "
                f"WHERE measurement_uid IN (SELECT measurement_uid FROM {join})",
                database=False,
            )
            if not await self._wait_for_mutation(name, MUTATION_WAIT):
                raise RuntimeError(
                    f"ClickHouse has not applied a write of {len(rows)} verdicts after {MUTATION_WAIT:g} s "
                    f"(system.mutations); its table {join} stays until it has"
                )
        finally:
            # never under a mutation still reading it: joinGet would fail there, and on 18.16 a
            # failed mutation is retried for ever
            if await self._mutation_done(name):
                await self._query(f"DROP TABLE IF EXISTS {join}", database=False)

    async def _mutation_done(self, marker: str) -> bool:
        """Whether no mutation of the table that names ``marker`` is still to do."""
        found = await self._rows(
            "SELECT count() AS n, sum(is_done) AS done FROM system.mutations "
            f"WHERE database = {literal(self.db)} AND table = {literal(TABLE)} "
            f"AND position(command, {literal(marker)}) > 0"
        )
        return bool(found[0]["n"] == found[0]["done"])

    async def _wait_for_mutation(self, marker: str, timeout: float) -> bool:
        """Wait until the mutations naming ``marker`` are done; False if they are not by ``timeout``
        seconds (a mutation rewrites every part of the table: seconds to minutes at scale)."""
        deadline = time.monotonic() + timeout
        pause = 0.05
        while not await self._mutation_done(marker):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(pause)
            pause = min(1.0, pause * 1.5)
        return True

    async def drop_left(self) -> None:
        """Drop the verdict Join tables of this database that a write left (a collector killed in
        it, a mutation that outlasted :data:`MUTATION_WAIT`), once no mutation still reads them and
        they are older than :data:`JOIN_LEFT_AFTER` (another collector's write may be using a new one)."""
        prefix = self.prefix
        try:
            rows = await self._rows(
                "SELECT name FROM system.tables "
                f"WHERE database = {literal(JOIN_DATABASE)} AND substring(name, 1, {len(prefix)}) = {literal(prefix)} "
                f"AND metadata_modification_time < now() - {JOIN_LEFT_AFTER:d}"
            )
            for name in (r["name"] for r in rows):
                token = name[len(prefix) :]  # this database's, not one whose name continues ours (db, db_2)
                mine = len(token) == 2 * JOIN_TOKEN_BYTES and all(c in "0123456789abcdef" for c in token)
                if mine and await self._mutation_done(name):
                    await self._query(f"DROP TABLE IF EXISTS {JOIN_DATABASE}.{name}", database=False)
        except RuntimeError as exc:  # a user who may not see or drop them there: none can be its own
            log.debug("left verdict tables not looked for: %.200s", exc)

    async def _in_lists(self, rows: Sequence[Analysis]) -> None:
        """:meth:`write_verdicts` without a Join table: rows with the same verdict share one
        UPDATE command, at most :data:`IN_LIST` uids in one ALTER (a mutation each)."""
        groups: dict[tuple[Any, ...], list[str]] = {}
        for a in rows:
            groups.setdefault(tuple(getattr(a, n) for n in ANALYSIS_COLUMNS), []).append(a.measurement_uid)
        statements: list[list[str]] = [[]]
        uids_in_last = 0
        for verdict, uids in groups.items():
            sets = ", ".join(f"{n} = {literal(v)}" for n, v in zip(ANALYSIS_COLUMNS, verdict, strict=True))
            for chunk in chunks(uids):
                if uids_in_last + len(chunk) > IN_LIST:
                    statements.append([])
                    uids_in_last = 0
                inlist = ", ".join(literal(u) for u in chunk)
                statements[-1].append(
                    f"UPDATE {sets}, confirmed = 0, analysed = 1 WHERE measurement_uid IN ({inlist})"
                )
                uids_in_last += len(chunk)
        for commands in statements:
            await self._query(f"ALTER TABLE {TABLE} " + ", ".join(commands))
        await self.wait_all()

    async def wait_all(self) -> None:
        """Wait (at most 30 s) until no mutation of the database is still to do."""
        sql = f"SELECT count() AS n FROM system.mutations WHERE database = {literal(self.db)} AND is_done = 0"
        for _ in range(600):
            if (await self._rows(sql))[0]["n"] == 0:
                return
            await asyncio.sleep(0.05)
