"""Bytes written whole, even when a signal cuts a write to a full pipe short."""

from __future__ import annotations

import os
import signal
import threading
import time

from reachwatch.output import write_all


def test_write_all_finishes_writes_that_signals_cut_short() -> None:
    data = os.urandom(4 << 20)  # many times a pipe's 64 KB
    read_end, write_end = os.pipe()
    received = bytearray()

    def drain() -> None:  # slow enough that the writer waits on a full pipe, often
        while chunk := os.read(read_end, 65536):
            received.extend(chunk)
            time.sleep(0.0005)

    reader = threading.Thread(target=drain)
    reader.start()
    # a handled signal every millisecond: a write interrupted after some bytes returns their count
    previous = signal.signal(signal.SIGALRM, lambda *_: None)
    signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)
    try:
        write_all(write_end, memoryview(data)[1:])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        os.close(write_end)
        reader.join(timeout=30)
        os.close(read_end)
    assert bytes(received) == data[1:]


def test_a_single_write_is_not_enough_under_those_signals() -> None:
    """What the test above guards against: one os.write takes only part of the data."""
    read_end, write_end = os.pipe()
    stop = threading.Event()

    def drain() -> None:
        while not stop.is_set() and os.read(read_end, 65536):
            time.sleep(0.001)

    reader = threading.Thread(target=drain)
    reader.start()
    previous = signal.signal(signal.SIGALRM, lambda *_: None)
    signal.setitimer(signal.ITIMER_REAL, 0.002, 0.002)
    try:
        taken = os.write(write_end, bytes(4 << 20))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        stop.set()
        os.close(write_end)
        reader.join(timeout=30)
        os.close(read_end)
    assert 0 < taken < 4 << 20
