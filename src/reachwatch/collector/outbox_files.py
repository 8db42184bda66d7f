"""What the outbox keeps on disk, and how it is read back: one file a measurement in ``pending/``
(a JSON object on one line, its ``FILE:LINE`` origins beside it), batches of them, and the errors
of a disk that cannot take more. Used by :class:`~reachwatch.collector.queue.Outbox`."""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from reachwatch.errors import UserError

#: Bytes per batch at most (half the collector's default --max-body): 500 real measurements with
#: large bodies pass 16 MB, and a collector may answer 413 while the body is still being sent,
#: which the client sees as a reset, not as the 413 that would have halved the batch
MAX_BATCH_BYTES = 8 << 20


#: Beside a pending measurement: the ``FILE:LINE`` of each line that held it, one a line
ORIGIN_SUFFIX = ".from"


JSON_TYPES = {
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def check_line(line: bytes, name: str, n: int) -> None:
    """:class:`UserError` unless ``line`` (line ``n`` of ``name``) is a JSON object."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as bad:  # orjson says only "surrogates not allowed" at column 1
            why = f"not valid UTF-8: byte 0x{line[bad.start]:02x} at byte {bad.start + 1}"
        else:
            why = f"{exc.msg} at column {exc.colno}"
    else:
        if isinstance(value, dict):
            return
        why = f"a JSON {JSON_TYPES.get(type(value), type(value).__name__)}"
    raise UserError(
        f"not a JSON object ({why})",
        where=f"{name}:{n}",
        fix=f"make line {n} one measurement (a JSON object on one line) or remove it, and run "
        f"submit again: nothing from {name} was queued",
    )


def batch_lines(chunk: list[Path]) -> tuple[list[bytes], list[tuple[Path, str]]]:
    """The batch's lines, one a file, and the files that are not one measurement on one line (an
    outbox edited by hand, or damaged): each queued file holds one JSON object; one spread over
    lines is sent on one, and a file holding several measurements (or none) is refused here, so
    that the batch's line numbers stay those of its files."""
    lines: list[bytes] = []
    unreadable: list[tuple[Path, str]] = []
    for path in chunk:
        try:
            data = path.read_bytes()
        except OSError as exc:
            unreadable.append((path, f"cannot be read: {exc.strerror}"))
            continue
        if b"\n" in data or b"\r" in data:
            try:
                value = orjson.loads(data)
            except orjson.JSONDecodeError:
                value = None
            if not isinstance(value, dict):
                unreadable.append(
                    (path, "not one measurement: the file holds several lines that are not one JSON object")
                )
                continue
            data = orjson.dumps(value)
        lines.append(data)
    return lines, unreadable


class OutboxFull(UserError):
    """A measurement could not be written to the outbox (a full or read-only disk)."""

    def __init__(self, cause: OSError, where: Path, done: str = "") -> None:
        self.cause = cause
        fix = "free some space (or give --outbox a directory on another disk) and run it again"
        super().__init__(
            f"cannot queue in the outbox: {cause.strerror or cause}" + (f"; {done}" if done else ""),
            where=str(where),
            fix=fix,
        )


def next_batch(files: list[Path], size: int) -> list[Path]:
    """The next batch: at most ``size`` files and :data:`MAX_BATCH_BYTES` (at least one file)."""
    chunk: list[Path] = []
    total = 0
    for path in files[:size]:
        total += path.stat().st_size + 1
        if chunk and total > MAX_BATCH_BYTES:
            break
        chunk.append(path)
    return chunk


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
