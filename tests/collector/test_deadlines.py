"""One sweep for many deadlines: the late ones are called, the stopped and restarted ones not."""

from __future__ import annotations

import asyncio

from reachwatch.collector import deadlines
from reachwatch.collector.deadlines import Deadlines, for_loop


async def test_only_what_is_not_stopped_in_time_is_late() -> None:
    late: list[str] = []
    d: Deadlines[str] = Deadlines(asyncio.get_running_loop(), late.append)
    for key in ("stopped", "late", "restarted"):
        d.start(key, 0.2)
    d.stop("stopped")
    await asyncio.sleep(0.12)
    d.start("restarted", 0.2)  # timed again from now
    await asyncio.sleep(0.15)
    assert late == ["late"]
    await asyncio.sleep(0.1)
    assert late == ["late", "restarted"] and len(d) == 0


async def test_a_late_deadline_is_noticed_within_the_slack() -> None:
    loop = asyncio.get_running_loop()
    seen: list[float] = []
    d: Deadlines[int] = Deadlines(loop, lambda _: seen.append(loop.time()))
    start = loop.time()
    d.start(1, 0.4)
    await asyncio.sleep(0.4 * (1 + deadlines.SLACK) + 0.1)
    assert len(seen) == 1 and 0.4 <= seen[0] - start <= 0.4 * (1 + deadlines.SLACK) + 0.05


async def test_a_shorter_deadline_started_later_is_swept_in_its_own_time() -> None:
    """The sweep follows the shortest length being timed, not the first one started."""
    late: list[str] = []
    d: Deadlines[str] = Deadlines(asyncio.get_running_loop(), late.append)
    d.start("long", 60)
    d.start("short", 0.1)
    await asyncio.sleep(0.25)
    assert late == ["short"] and len(d) == 1
    d.stop("long")


async def test_one_per_loop_and_purpose() -> None:
    loop = asyncio.get_running_loop()
    a = for_loop(loop, "a", print)
    assert for_loop(loop, "a", print) is a and for_loop(loop, "b", print) is not a
