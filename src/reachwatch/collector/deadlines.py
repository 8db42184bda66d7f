"""Deadlines that almost never pass, checked by one periodic sweep instead of a timer each.

Every request starts two of them (its headers must arrive, then its body must keep arriving) and
nearly always stops them in time. A timer each (``loop.call_later`` and its ``cancel``) costs
~2.2 us under uvloop, twice per request on the single-post path; here starting and stopping one
is a dict update (~0.2 us). A deadline that passes is noticed by the sweep, at most an eighth of
its length late.

One :class:`Deadlines` per event loop and purpose (:func:`for_loop`): its sweep runs on that loop,
and only while something is being timed.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

#: a deadline is noticed at most this fraction of its length after it passed
SLACK = 1 / 8


class Deadlines(Generic[K]):
    """Keys each with a deadline; ``late(key)`` is called (on the loop) for each that passes
    before :meth:`stop`. Not thread-safe: used from its loop only."""

    def __init__(self, loop: asyncio.AbstractEventLoop, late: Callable[[K], None]) -> None:
        self._loop = loop
        self._late = late
        #: key -> (deadline, its length), on the monotonic clock
        self._timed: dict[K, tuple[float, float]] = {}
        self._sweep_at: float | None = None
        self._sweep: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._timed)

    def start(self, key: K, seconds: float) -> None:
        """Time ``key`` from now (again, if it was already)."""
        now = time.monotonic()
        self._timed[key] = (now + seconds, seconds)
        at = now + seconds * SLACK
        if self._sweep_at is None or at < self._sweep_at:
            self._schedule(at, now)

    def stop(self, key: K) -> None:
        self._timed.pop(key, None)

    def _schedule(self, at: float, now: float) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
        self._sweep_at = at
        self._sweep = self._loop.call_later(max(0.0, at - now), self._run)

    def _run(self) -> None:
        self._sweep = self._sweep_at = None
        now = time.monotonic()
        late = [key for key, (deadline, _) in self._timed.items() if deadline <= now]
        for key in late:
            del self._timed[key]
        if self._timed:
            self._schedule(now + min(seconds for _, seconds in self._timed.values()) * SLACK, now)
        for key in late:
            self._late(key)


_loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Deadlines[object]]] = (
    weakref.WeakKeyDictionary()
)


def for_loop(loop: asyncio.AbstractEventLoop, purpose: str, late: Callable[[K], None]) -> Deadlines[K]:
    """The loop's :class:`Deadlines` for ``purpose``, made with ``late`` on first use."""
    kinds = _loops.get(loop)
    if kinds is None:
        kinds = _loops[loop] = {}
    found = kinds.get(purpose)
    if found is None:
        found = kinds[purpose] = Deadlines(loop, late)  # type: ignore[arg-type]
    return found  # type: ignore[return-value]
