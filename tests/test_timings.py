"""Opt-in timings in ``loop.stats().timings``, on every backend, compiled and pure-Python.

Durations come from busy loops on the monotonic clock (``busy``), so each has a guaranteed lower bound; the
tests assert those bounds and the bookkeeping, never how fast anything is.
"""

from __future__ import annotations

import asyncio
import time

import pytest

import multiloop
from multiloop.timings import SLOWEST_KEPT


def busy(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def where(func) -> str:
    code = func.__code__
    return f"{code.co_filename}:{code.co_firstlineno}"


def test_timings_are_off_unless_enabled(loop, run):
    run(asyncio.sleep(0))
    assert loop.stats().timings is None
    assert loop._instruments is None  # the plain pass runs


def test_new_loop_can_start_with_timings(backend):
    loop = multiloop.new_loop(backend, timings=True)
    try:
        loop.run_until_complete(asyncio.sleep(0))
        timings = loop.stats().timings
        assert timings is not None and timings.passes >= 1 and timings.callbacks >= 1
    finally:
        loop.close()


def test_the_slowest_callbacks_are_listed_with_their_source_location(loop, run):
    loop.slow_callback_duration = 0.02
    loop.enable_timings()

    async def stalls_the_loop():
        busy(0.05)

    async def main():
        loop.call_soon(busy, 0.03)
        await asyncio.create_task(stalls_the_loop(), name="staller")

    run(main())
    timings = loop.stats().timings
    assert timings.slow_callbacks == 2
    slowest, second = timings.slowest
    assert slowest.duration >= 0.05 and slowest.callback.endswith("stalls_the_loop")
    assert slowest.location == where(stalls_the_loop) and slowest.task == "staller"
    assert second.duration >= 0.03 and second.callback == "busy" and second.location == where(busy)
    assert second.task is None
    assert timings.callback_time >= 0.08


def test_only_the_slowest_few_are_kept_slowest_first(loop):
    loop.slow_callback_duration = 0
    loop.enable_timings()
    for _ in range(SLOWEST_KEPT + 3):
        loop.call_soon(lambda: None)
    loop.call_soon(busy, 0.02)
    loop.call_soon(loop.stop)
    loop.run_forever()
    timings = loop.stats().timings
    assert timings.slow_callbacks == timings.callbacks == SLOWEST_KEPT + 5
    assert len(timings.slowest) == SLOWEST_KEPT
    durations = [s.duration for s in timings.slowest]
    assert durations == sorted(durations, reverse=True) and durations[0] >= 0.02
    assert timings.slowest[0].callback == "busy"


def test_loop_lag_shows_as_timers_run_late_behind_a_busy_callback(loop):
    loop.enable_timings()
    loop.call_soon(busy, 0.04)  # ready first: the timer below, due at once, waits for it
    loop.call_later(0, loop.stop)
    loop.run_forever()
    timings = loop.stats().timings
    assert timings.timers == 1
    assert timings.timer_lag_max >= 0.04 and timings.timer_lag_mean == timings.timer_lag_max


def test_waiting_and_running_add_up_to_at_most_the_elapsed_time(loop, run):
    loop.enable_timings()
    before = loop.stats()

    async def main():
        await asyncio.sleep(0.03)  # nothing else to do: the loop waits in the backend
        busy(0.02)

    run(main())
    after = loop.stats()
    timings = after.timings
    assert timings.io_wait >= 0.02  # the sleep, less at most the clock resolution and the timeout rounding
    assert timings.callback_time >= 0.02
    assert timings.io_wait + timings.callback_time <= timings.elapsed
    assert timings.passes == after.iterations - before.iterations
    assert timings.callbacks == after.callbacks - before.callbacks


def test_timings_can_be_turned_off_and_on_again(loop, run):
    loop.enable_timings()
    run(asyncio.sleep(0))
    first = loop.stats().timings.callbacks
    loop.enable_timings()  # already on: keeps counting
    assert loop.stats().timings.callbacks == first
    loop.disable_timings()
    assert loop.stats().timings is None and loop._instruments is None
    loop.enable_timings()
    assert loop.stats().timings.callbacks == 0  # a fresh start


def test_timings_and_instruments_together(loop, run):
    seen = []

    class Counter:
        def after_callback(self, handle):
            seen.append(handle)

    counter = Counter()
    loop.enable_timings()
    loop.add_instrument(counter)
    run(asyncio.sleep(0))
    loop.remove_instrument(counter)
    assert loop._instruments is not None  # the timings still need the instrumented pass
    assert loop.stats().timings.callbacks == len(seen) > 0


@pytest.mark.parametrize("backend", ["poll"])
def test_describing_a_partial_and_a_builtin(backend):
    import functools

    from multiloop.timings import describe_callback

    loop = multiloop.new_loop(backend)
    try:
        partial = loop.call_soon(functools.partial(busy, 0))
        builtin = loop.call_soon(print)
        assert describe_callback(partial) == ("busy", where(busy), None)
        assert describe_callback(builtin) == ("print", "<built-in>", None)
    finally:
        loop.close()
