"""The memory the collector shares with a batch worker."""

from __future__ import annotations

import os

from reachwatch.collector.shared import Shared


def test_closing_twice_leaves_the_fd_number_to_whoever_has_it_now() -> None:
    shared = Shared(size=4096)
    number = shared.fd
    shared.close()
    other = os.open(os.devnull, os.O_RDONLY)  # the lowest free number: most likely the same one
    try:
        shared.close()
        os.fstat(other)  # still open
        if other == number:
            assert shared.fd == -1
    finally:
        os.close(other)


def test_it_grows_to_fit_and_keeps_what_it_holds() -> None:
    shared = Shared(size=4096)
    try:
        shared.map[:5] = b"hello"
        shared.fit(10_000)
        assert len(shared) >= 10_000 and shared.map[:5] == b"hello"
    finally:
        shared.close()
