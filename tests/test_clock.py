"""The loop's clock is time.monotonic()'s: ``loop.time()``, ``call_later`` and the pass's "which timers are
due" all read it, and the compiled build reads it with a C call (multiloop/_clock.pxd) that must give the very
numbers time.monotonic() gives. Mixing two clocks would fire timers early or late by their difference."""

from __future__ import annotations

import asyncio
import time


def test_loop_time_interleaves_with_time_monotonic(loop):
    previous = time.monotonic()
    for _ in range(20_000):
        now = loop.time()
        after = time.monotonic()
        assert previous <= now <= after, (previous, now, after)
        previous = after


def test_call_later_counts_from_time_monotonic(loop):
    before = time.monotonic()
    handle = loop.call_later(100.0, lambda: None)
    after = time.monotonic()
    assert before + 100.0 <= handle.when() <= after + 100.0
    handle.cancel()


def test_a_timer_fires_no_earlier_than_its_deadline_by_time_monotonic(loop):
    fired: list[float] = []

    async def main() -> None:
        deadline = loop.time() + 0.02
        loop.call_at(deadline, lambda: fired.append(time.monotonic()))
        while not fired:
            await asyncio.sleep(0.005)
        assert fired[0] >= deadline - loop._clock_resolution

    loop.run_until_complete(main())
