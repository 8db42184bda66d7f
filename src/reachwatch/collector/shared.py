"""Memory the collector shares with one batch worker process, for the bulk bytes of its frames."""

from __future__ import annotations

import contextlib
import mmap
import os


class Shared:
    """Memory shared by the collector and one worker: a memfd (no name anywhere, freed with the
    last process that holds it, so nothing outlives a ``kill -9``), mapped by both. The collector
    copies a batch piece in and the worker answers its rows there: one copy each way, where a
    socketpair took two (in and out of the kernel) and asyncio's reader a third (~3 us of CPU per
    median line). Grows to the largest piece seen, never shrinks."""

    def __init__(self, size: int = 1 << 20, fd: int | None = None) -> None:
        self.fd = os.memfd_create("reachwatch-batch") if fd is None else fd
        if fd is None:
            os.ftruncate(self.fd, size)
        self.map = mmap.mmap(self.fd, size)

    def __len__(self) -> int:
        return len(self.map)

    def fit(self, size: int) -> None:
        """The collector's side: at least ``size`` bytes (doubling)."""
        if size > len(self.map):
            size = max(size, 2 * len(self.map))
            os.ftruncate(self.fd, size)
            self.remap(size)

    def remap(self, size: int) -> None:
        old, self.map = self.map, mmap.mmap(self.fd, size)
        with contextlib.suppress(BufferError):  # a view still held: the old mapping goes with it
            old.close()

    def close(self) -> None:
        """Unmap and close, once: a second call does nothing (closing the fd's number again could
        close whatever file has been given that number since)."""
        with contextlib.suppress(BufferError):
            self.map.close()
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            with contextlib.suppress(OSError):
                os.close(fd)
