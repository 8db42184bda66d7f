"""Bytes written whole, even when a signal cuts a write to a full pipe short."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator

from reachwatch.output import write_all


@contextlib.contextmanager
def slow_pipe(pause: float, received: bytearray | None = None) -> Iterator[tuple[int, Callable[[], None]]]:
    """A pipe whose reader takes 64 KB every ``pause`` seconds (into ``received``), and a handled
    SIGALRM every millisecond meanwhile: a write interrupted after some bytes returns their count.
    Yields the write end and a function that closes it (the reader then ends)."""
    read_end, write_end = os.pipe()
    closed = threading.Event()

    def drain() -> None:
        while chunk := os.read(read_end, 65536):
            if received is not None:
                received.extend(chunk)
            time.sleep(pause)

    def close() -> None:
        if not closed.is_set():
            closed.set()
            os.close(write_end)

    reader = threading.Thread(target=drain)
    reader.start()
    previous = signal.signal(signal.SIGALRM, lambda *_: None)
    signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)
    try:
        yield write_end, close
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        close()
        reader.join(timeout=30)
        os.close(read_end)


def test_write_all_finishes_writes_that_signals_cut_short() -> None:
    data = os.urandom(4 << 20)  # many times a pipe's 64 KB
    received = bytearray()
    with slow_pipe(0.0005, received) as (write_end, close):
        write_all(write_end, memoryview(data)[1:])
        close()
    assert bytes(received) == data[1:]


def test_a_single_write_is_not_enough_under_those_signals() -> None:
    """What the test above guards against: one os.write takes only part of the data."""
    with slow_pipe(0.001) as (write_end, _):
        taken = os.write(write_end, bytes(4 << 20))
    assert 0 < taken < 4 << 20
