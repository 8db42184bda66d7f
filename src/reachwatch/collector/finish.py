"""A staged measurement (:func:`~reachwatch.collector.prepare.stage`) to its row: the keyed hash of
its identity form, its uid, the probe id hash and the zstd of its stored JSON.

Run off the event loop (the finisher thread, or a batch worker process): hashing past 2 KB and
compression release the GIL. Compiled with mypyc (``compiled.txt``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from typing import Any

from blake3 import blake3

from reachwatch.collector.ooni_protocol import measurement_uid
from reachwatch.store.compression import compress, compress_many
from reachwatch.store.schema import COLUMN_NAMES, Row, RowColumns


@dataclasses.dataclass(slots=True)
class Staged:
    """A validated, attributed, scrubbed measurement: the row but for its hashes, uid and ``raw``."""

    key: bytes
    canonical: bytes  #: the identity form (content as sent, without the report id)
    stored: bytes  #: the scrubbed JSON to store
    received: dt.datetime
    #: the row's values in :data:`~reachwatch.store.schema.COLUMN_NAMES` order, the uid, hashes and
    #: ``raw`` None until :func:`finish_values` (a list, not a dict by name: one less container per
    #: line to build, read back and transpose: ~2 us of a median batch line)
    values: list[Any]
    #: the store's content hash is keyed BLAKE2b (:data:`~reachwatch.store.schema.LEGACY_IDENTITY`),
    #: not BLAKE3
    legacy: bool = False
    #: the submitter's vantage point, hashed (:mod:`~reachwatch.collector.vantage`): the row's
    #: ``probe_id_hash``; None for an unknown submitter (the report id's hash then)
    vantage: str | None = None

    def __init__(
        self,
        key: bytes,
        canonical: bytes,
        stored: bytes,
        received: dt.datetime,
        values: list[Any],
        legacy: bool = False,
        vantage: str | None = None,
    ) -> None:
        # by hand, so that mypyc compiles it (see observations.records)
        self.key = key
        self.canonical = canonical
        self.stored = stored
        self.received = received
        self.values = values
        self.legacy = legacy
        self.vantage = vantage


_UID, _HASH, _REPORT, _CC, _TEST, _PROBE_ID, _RAW = (
    COLUMN_NAMES.index(n)
    for n in ("measurement_uid", "content_hash", "report_id", "probe_cc", "test_name", "probe_id_hash", "raw")
)


def finish(staged: Staged, raw: bytes | None = None) -> Row:
    """The row: keyed hash of the identity form (:func:`keyed_hash`), uid, probe id hash, zstd of
    the stored JSON (unless given as ``raw``). Meant for a worker thread: hashing (past 2 KB) and compression release the GIL."""
    return Row(*finish_values(staged, raw))


def finish_values(staged: Staged, raw: bytes | None = None, keep_gil: bool = True) -> list[Any]:
    """:func:`finish` as a list in :data:`~reachwatch.store.schema.COLUMN_NAMES` order (the
    staged values, completed in place). ``keep_gil``: hash in pieces that keep the GIL (see
    :data:`_PIECE`); a batch worker process, which has no other thread, hashes in one call."""
    v = staged.values
    content_hash = keyed_hash(staged.canonical, staged.key, keep_gil, staged.legacy)
    v[_UID] = measurement_uid(staged.received, v[_CC], v[_TEST], content_hash)
    v[_HASH] = content_hash
    v[_PROBE_ID] = staged.vantage or probe_id_hash(v[_REPORT], staged.key)
    v[_RAW] = compress(staged.stored) if raw is None else raw
    return v


def finish_rows(staged: list[Staged], keep_gil: bool = True) -> RowColumns:
    """:func:`finish_values` of many, compressed in one call (which releases the GIL once), as one
    table in order."""
    raws = compress_many([s.stored for s in staged])
    return RowColumns.of_values(
        [finish_values(s, raw, keep_gil) for s, raw in zip(staged, raws, strict=True)]
    )


#: the last (report id, key, hash): a batch's lines mostly share their report; replaced whole, so
#: thread-safe
_last_probe_id: tuple[str, bytes | None, str] = ("", None, "")


def probe_id_hash(report_id: str, key: bytes) -> str:
    global _last_probe_id
    last = _last_probe_id
    if last[0] == report_id and last[1] == key:
        return last[2]
    value = hashlib.blake2b(report_id.encode(), digest_size=8, key=key).hexdigest()
    _last_probe_id = (report_id, key, value)
    return value


#: hashlib and blake3 release the GIL for an update from 2,048 bytes: re-taking it while the event
#: loop runs Python waits up to a switch interval, so the finisher hashes in smaller pieces and
#: keeps the GIL
_PIECE = 2047


def keyed_hash(data: bytes, key: bytes, keep_gil: bool = True, legacy: bool = False) -> str:
    """128 bits of keyed BLAKE3 of ``data`` as hex (keyed BLAKE2b if ``legacy``). BLAKE3 takes
    ~3 us for a median measurement's 6.6 KB, BLAKE2b ~8 (``hashlib``'s reference C)."""
    h: Any = hashlib.blake2b(digest_size=16, key=key) if legacy else blake3(key=key)
    if len(data) < _PIECE or not keep_gil:
        h.update(data)
    else:
        view = memoryview(data)
        for i in range(0, len(view), _PIECE):
            h.update(view[i : i + _PIECE])
    return str(h.hexdigest() if legacy else h.hexdigest(16))
