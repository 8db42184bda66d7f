"""The frames the collector and its batch workers exchange on a pipe: the lengths of the pickled
header and of the bulk bytes (two network-order 64-bit numbers), the header, the bulk. Pickle
is safe here: both ends are this collector's own processes."""

from __future__ import annotations

import pickle
import struct
from typing import Any, BinaryIO

from reachwatch.output import write_all

SIZES = struct.Struct("!QQ")


def frame(header: Any, bulk: bytes | memoryview = b"") -> list[bytes | memoryview]:
    head = pickle.dumps(header, protocol=pickle.HIGHEST_PROTOCOL)
    return [SIZES.pack(len(head), len(bulk)), head, bulk]


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return data


def read_frame(stream: BinaryIO) -> tuple[Any, bytes]:
    head_size, bulk_size = SIZES.unpack(_read_exactly(stream, SIZES.size))
    header = pickle.loads(_read_exactly(stream, head_size))
    return header, _read_exactly(stream, bulk_size)


def write_frame(fd: int, header: Any, bulk: bytes = b"") -> None:
    # not sys.stdout.buffer.write: under PYTHONUNBUFFERED that is a bare FileIO, whose write may
    # take part of an answer (a stop signal while the pipe is full): the rest was lost, the batch hung
    for part in frame(header, bulk):
        write_all(fd, part)
