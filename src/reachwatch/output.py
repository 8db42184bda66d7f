"""Writing bytes to a file descriptor without losing any.

``os.write`` (and ``sys.stdout.buffer.write`` when ``PYTHONUNBUFFERED`` makes it a bare ``FileIO``)
may take only part of the data, e.g. when a stop signal interrupts a write to a full pipe or socket;
it says how much it took, and a caller that ignores that loses the rest.
"""

from __future__ import annotations

import os
import sys


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """Every byte of ``data`` to ``fd``, in as many writes as it takes."""
    view = memoryview(data).cast("B")
    while view:
        view = view[os.write(fd, view) :]


def write_stdout(data: bytes) -> None:
    """``data`` to standard output, whole; through ``sys.stdout`` when it is not a real file (a
    test's capture)."""
    sys.stdout.flush()
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both of the last two
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    write_all(fd, data)
