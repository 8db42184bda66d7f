"""Per-measurement clock and transaction ids: every observation says when (t0, t) and which."""

from __future__ import annotations

import time


class Trace:
    """Times are seconds since the measurement began; transaction ids count from 1."""

    __slots__ = ("_next_id", "_start")

    def __init__(self) -> None:
        self._start = time.monotonic()
        self._next_id = 0

    def now(self) -> float:
        return round(time.monotonic() - self._start, 6)

    def next_id(self) -> int:
        self._next_id += 1
        return self._next_id


def depth_tags(depth: int) -> list[str]:
    return [f"depth={depth}"]
