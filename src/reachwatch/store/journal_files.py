"""The journal's files: the record format, a segment file appended to, the directory's lock.

A segment (``NNNNNNNNNNNN.rwj``) is a sequence of records: ``RWJ1``, CRC-32 of the payload,
payload length (little-endian), payload (an Arrow IPC stream of
:data:`~reachwatch.store.schema.ARROW_SCHEMA` rows). :mod:`reachwatch.store.journal` decides when
to write and when the rows have reached the store.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import logging
import os
import struct
import zlib
from pathlib import Path

import pyarrow as pa

from reachwatch.errors import UserError
from reachwatch.store.schema import ARROW_SCHEMA, RowColumns

log = logging.getLogger("reachwatch.store.journal")  # the journal's own log, as before

MAGIC = b"RWJ1"
HEADER = struct.Struct("<4sIQ")
SUFFIX = ".rwj"
DAMAGED = ".damaged"


def encode(rows: RowColumns) -> list[bytes | pa.Buffer]:
    """The record for ``rows``: header and payload, to be written together."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, ARROW_SCHEMA) as writer:
        writer.write_table(rows.table)
    payload = sink.getvalue()
    return [HEADER.pack(MAGIC, zlib.crc32(payload), payload.size), payload]


def decode(data: bytes) -> tuple[list[RowColumns], str | None, int]:
    """The rows of each whole record in ``data``, what is wrong past them if anything but a
    record cut short at the end (a write interrupted by a kill, never acknowledged), and where
    the whole records end."""
    out: list[RowColumns] = []
    offset = 0
    view = memoryview(data)
    while len(data) - offset >= HEADER.size:
        magic, crc, size = HEADER.unpack_from(data, offset)
        if magic != MAGIC:
            return out, f"no record at byte {offset}", offset
        start = offset + HEADER.size
        if len(data) - start < size:
            break
        payload = view[start : start + size]
        if zlib.crc32(payload) != crc:
            return out, f"the record at byte {offset} fails its checksum", offset
        try:
            out.append(RowColumns(pa.ipc.open_stream(payload).read_all()))
        except (pa.ArrowException, ValueError) as exc:
            return out, f"the record at byte {offset} is not rows of this version ({exc})", offset
        offset = start + size
    return out, None, offset


class Segment:
    """One journal file, appended to on the journal's thread."""

    def __init__(self, path: Path, *, sync: bool) -> None:
        self.path = path
        self.sync = sync
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        self.size = 0

    def append(self, record: list[bytes | pa.Buffer]) -> None:
        """Write ``record`` (:func:`encode`) whole (and to disk, with ``sync``), or leave the file
        as it was."""
        views = [memoryview(p) for p in record]
        length = sum(len(v) for v in views)
        at = self.size  # written at an explicit offset: a record taken back leaves no gap
        try:
            while views:
                written = os.pwritev(self.fd, views, at)
                at += written
                if written == 0:
                    raise OSError(errno.ENOSPC, "the journal could not be written")
                while views and written >= len(views[0]):
                    written -= len(views[0])
                    views.pop(0)
                if views and written:
                    views[0] = views[0][written:]
            if self.sync:
                os.fdatasync(self.fd)
        except OSError:
            with contextlib.suppress(OSError):  # a part of a record must not precede the next one
                os.ftruncate(self.fd, self.size)
            raise
        self.size += length

    def close(self) -> None:
        os.close(self.fd)


def unlink(paths: list[Path]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


class JournalBusy(UserError):
    """The journal's lock is held: a collector is running on it."""


def lock_directory(directory: Path) -> int:
    """Create ``directory`` if need be and hold a lock on it (``flock`` of the directory itself, so
    no lock file is left behind): two collectors appending to and replaying one journal would store
    rows twice or lose them (a DuckDB file is locked by DuckDB; a ClickHouse database is not)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise UserError(
            f"cannot use this directory for the journal: {exc.strerror}",
            where=str(directory),
            fix="give a directory the collector can create and write (--journal-dir)",
        ) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise JournalBusy(
            "another collector is using this journal",
            where=str(directory),
            fix="give each collector a journal directory of its own (--journal-dir)",
        ) from None
    return fd


def sync_directory(directory: Path) -> None:
    """Make a new segment's name durable (the data's own ``fdatasync`` does not cover it)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclasses.dataclass
class Left:
    """What earlier runs left in a journal's directory."""

    #: each segment with its rows, oldest first
    segments: list[tuple[Path, list[RowColumns]]]
    #: the damaged segments among them: to be set aside (:func:`set_aside`) once their rows are stored
    damaged: set[Path]
    #: the highest segment number found (new segments are numbered after it)
    last_number: int


def left_segments(directory: Path) -> Left:
    """Every segment in ``directory`` with its whole records. A segment started and never written
    is deleted; a damaged one with no whole record is set aside at once; one with some is returned
    and named in :attr:`Left.damaged`: setting it aside before its records are stored would lose
    them to a kill in between, since an open reads only ``*.rwj`` files."""
    left = Left([], set(), 0)
    for path in sorted(directory.glob(f"*{SUFFIX}")):
        with contextlib.suppress(ValueError):
            left.last_number = max(left.last_number, int(path.stem))
        if not path.is_file():  # nothing this collector wrote (a directory, say): left alone
            log.warning("journal %s: not a file, so not a segment of this journal; left alone", path)
            continue
        data = _segment_bytes(path)
        parts, damage, whole = decode(data)
        if damage is None and whole < len(data):
            log.info(
                "journal %s: a record cut short at byte %d (a write a stop interrupted, so never "
                "acknowledged) is dropped",
                path,
                whole,
            )
        if damage is None:
            if parts:
                left.segments.append((path, parts))
            else:  # started and never written (every flush starts one): nothing to store
                unlink([path])
            continue
        log.error(
            "journal %s: %s; its %d whole records are stored, the file kept as %s",
            path,
            damage,
            len(parts),
            path.name + DAMAGED,
        )
        if parts:
            left.damaged.add(path)
            left.segments.append((path, parts))
        else:
            set_aside(path)
    return left


def _segment_bytes(path: Path) -> bytes:
    """A segment's bytes; a UserError if they cannot be read (its measurements are not stored yet)."""
    try:
        return path.read_bytes()
    except OSError as exc:
        what = f"cannot read the journal's segment {path.name}: {exc}"
        fix = "give the collector read access to its journal (its measurements are not stored yet)"
        raise UserError(what, where=str(path.parent), fix=fix) from exc


def set_aside(path: Path) -> None:
    """Keep a damaged segment for the operator, out of the way of the next open."""
    path.rename(path.with_name(path.name + DAMAGED))
