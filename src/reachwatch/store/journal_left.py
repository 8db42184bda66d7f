"""What a stopped collector left in a journal of a DuckDB file, found and stored by whoever
opens the file next: a later ``reachwatch serve`` (whatever its journal options) and the readers
(``report``, ``findings``, ``analyze``).

A collector journals beside the file (``FILE.duckdb.journal``) or in the ``--journal-dir`` it was
given, which it notes beside the file first (``FILE.duckdb.journal-dir``). A journal another
collector is using (locked) is left to it.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from reachwatch.errors import UserError
from reachwatch.store import default_journal
from reachwatch.store.journal import JournaledStore
from reachwatch.store.journal_files import SUFFIX, JournalBusy, sync_directory

#: Beside a DuckDB file, ``FILE.duckdb.journal-dir``: the journal directory its collector was
#: given (``--journal-dir``), for whoever opens the file after a kill
NOTE_SUFFIX = ".journal-dir"


def note_journal(path: str, directory: str) -> None:
    """Record beside the DuckDB file ``path`` that its collector journals in ``directory`` (a
    directory other than the default), before the first append: what a kill leaves there is then
    found by the next collector or reader of the file, whatever they are given."""
    target = os.path.abspath(directory)
    default = default_journal(path)
    if default is None or os.path.abspath(default) == target:
        return
    note = Path(f"{path}{NOTE_SUFFIX}")
    try:
        if note.read_text().strip() == target:
            return
    except OSError:
        pass
    scratch = note.with_name(note.name + ".tmp")
    with open(scratch, "w") as fh:
        fh.write(target + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(scratch, note)
    sync_directory(note.parent)


def left_journals(path: str) -> list[Path]:
    """Where collectors of the DuckDB file ``path`` journal: beside it (the default), and the
    directory the last one given ``--journal-dir`` was told (:func:`note_journal`)."""
    default = default_journal(path)
    if default is None:
        return []
    found = [Path(default)]
    try:
        noted = Path(f"{path}{NOTE_SUFFIX}").read_text().strip()
    except OSError:
        noted = ""
    if noted and os.path.abspath(noted) != os.path.abspath(default):
        found.append(Path(noted))
    return found


def store_left_journal(path: str, *, besides: str | None = None) -> int:
    """Store the measurements a stopped collector left in a journal of the DuckDB file ``path``
    (killed before it stored them: the next ``serve`` would), beside the file or where its
    collector was told (:func:`left_journals`), but for the journal ``besides`` (the one the caller
    opens itself); how many there were. For readers of the file and a collector about to open it,
    outside any event loop."""
    total = 0
    for journal in left_journals(path):
        if besides is None or os.path.abspath(journal) != os.path.abspath(besides):
            total += _store_journal(path, journal)
    return total


def _store_journal(path: str, journal: Path) -> int:
    left = sorted(journal.glob(f"*{SUFFIX}")) if journal.is_dir() else []
    if not any(p.stat().st_size for p in left):
        return 0
    from reachwatch.store.duckdb import DuckDBStore

    async def run() -> int:
        store = JournaledStore(DuckDBStore(path), journal)
        await store.open()
        await store.close()
        if store.held:
            # a collector that went on without them would answer 404 for measurements it
            # acknowledged, and never store them while it runs (they are in no journal of its)
            raise UserError(
                f"{store.held} measurements an earlier collector acknowledged wait in its journal "
                f"{journal}, and the store cannot take them now (the error is logged above)",
                where=path,
                fix=f"free what the store lacks (disk space) and start again, or start with "
                f"--journal-dir {journal} to serve them meanwhile",
            )
        return store.recovered

    try:
        return asyncio.run(run())
    except JournalBusy:  # a collector is running on it: its rows are its to store
        return 0
