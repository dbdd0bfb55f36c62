"""The built-in timings: where a loop's time goes (``loop.enable_timings()``, read in ``loop.stats().timings``).

Facts that shape this module:

- A duration needs two clock reads; around every callback that is about as much work as running a short
  callback, so timings are off unless asked for, and cost nothing then (the loop runs its plain pass).
- The loop's lag, the number users watch ("is my loop blocked?"), shows as late timers: a timer due at ``t``
  runs at ``t`` plus however long the callbacks ahead of it ran. ``TimerHandle.when()`` is public, so the
  lag of every timer is measured exactly, with no probe task of our own (which would change what it measures).
- A slow callback is worth reporting only with where it comes from. A task step's handle holds a method of
  the task (its ``__self__``), so the report names the task and its coroutine's function; any other callback
  is named by its function (``functools.partial`` unwrapped). ``file:line`` is where that function is defined.

Design: :class:`TimingsRecorder` is fed by the loop's instrument set (:mod:`multiloop.instruments`), which reads
the clock around waits and callbacks while timings are enabled; it keeps sums, counts and the few slowest
callbacks (a bounded heap), never a per-event record.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
import time
from typing import Any

from .stats import LoopTimings, SlowCallback

__all__ = ["TimingsRecorder", "describe_callback", "format_timings", "SLOWEST_KEPT"]

#: How many of the slowest callbacks ``LoopTimings.slowest`` lists.
SLOWEST_KEPT = 5

_monotonic = time.monotonic


def _code_location(func: Any) -> tuple[str, str]:
    """(qualified name, ``file:line`` of its definition) of a function-like object."""
    while isinstance(func, functools.partial):
        func = func.func
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)
    code = getattr(getattr(func, "__func__", func), "__code__", None)
    if code is None:
        return name, "<built-in>"
    return name, f"{code.co_filename}:{code.co_firstlineno}"


def describe_callback(handle: asyncio.Handle) -> tuple[str, str, str | None]:
    """(callback name, ``file:line``, task name or None) for the callback ``handle`` runs or ran."""
    # asyncio.Handle's slot, the one the core already fills in (tests/test_handle_contract.py fails loudly if a
    # Python release changes the layout); None once the handle is cancelled.
    callback = getattr(handle, "_callback", None)
    if callback is None:
        return repr(handle), "<unknown>", None
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        coro: Any = owner.get_coro()
        code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
        if code is not None:
            return code.co_qualname, f"{code.co_filename}:{code.co_firstlineno}", owner.get_name()
        return repr(coro), "<unknown>", owner.get_name()
    name, location = _code_location(callback)
    return name, location, None


class TimingsRecorder:
    """Sums and maxima of one loop's waits and callbacks since it was made (see the module docstring)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.started = _monotonic()
        self.io_wait = 0.0
        self.callback_time = 0.0
        self.passes = 0
        self.callbacks = 0
        self.timers = 0
        self.timer_lag_sum = 0.0
        self.timer_lag_max = 0.0
        self.slow = 0
        self._wait_start = 0.0
        # (duration, tie-breaker, handle's description): a min-heap of the slowest SLOWEST_KEPT.
        self._slowest: list[tuple[float, int, SlowCallback]] = []
        self._seq = itertools.count()

    def wait_started(self) -> None:
        self._wait_start = _monotonic()

    def wait_ended(self) -> None:
        self.passes += 1
        if self._wait_start:  # else enabled during the wait (on the trio bridge, by a trio task): not timed
            self.io_wait += _monotonic() - self._wait_start
            self._wait_start = 0.0

    def ran(self, handle: asyncio.Handle, start: float, duration: float) -> None:
        """``handle`` ran from ``start`` for ``duration`` seconds."""
        self.callbacks += 1
        self.callback_time += duration
        if isinstance(handle, asyncio.TimerHandle):
            lag = start - handle.when()
            if lag > 0:
                self.timer_lag_sum += lag
                if lag > self.timer_lag_max:
                    self.timer_lag_max = lag
            self.timers += 1
        if duration >= self._loop.slow_callback_duration:
            self.slow += 1
            slowest = self._slowest
            if len(slowest) < SLOWEST_KEPT or duration > slowest[0][0]:
                name, location, task = describe_callback(handle)
                entry = (duration, next(self._seq), SlowCallback(duration, name, location, task))
                if len(slowest) < SLOWEST_KEPT:
                    heapq.heappush(slowest, entry)
                else:
                    heapq.heapreplace(slowest, entry)

    def snapshot(self) -> LoopTimings:
        return LoopTimings(
            elapsed=_monotonic() - self.started, io_wait=self.io_wait, callback_time=self.callback_time,
            passes=self.passes, callbacks=self.callbacks, timers=self.timers,
            timer_lag_mean=self.timer_lag_sum / self.timers if self.timers else 0.0,
            timer_lag_max=self.timer_lag_max, slow_callbacks=self.slow,
            slowest=tuple(entry[2] for entry in sorted(self._slowest, reverse=True)))


def format_timings(t: LoopTimings, indent: str = "  ") -> list[str]:
    """:class:`LoopTimings` as a few readable lines (``python -m multiloop run --stats`` prints these)."""
    busy = t.callback_time / t.elapsed * 100 if t.elapsed else 0.0
    waiting = t.io_wait / t.elapsed * 100 if t.elapsed else 0.0
    lines = [f"time: {t.elapsed:.3f} s in {t.passes:,} passes: {t.callback_time:.3f} s running {t.callbacks:,} "
             f"callbacks ({busy:.1f}%), {t.io_wait:.3f} s waiting for I/O ({waiting:.1f}%)",
             f"loop lag (how late {t.timers:,} timers ran): mean {t.timer_lag_mean * 1000:.3f} ms, "
             f"max {t.timer_lag_max * 1000:.3f} ms",
             f"slow callbacks (at least slow_callback_duration): {t.slow_callbacks:,}"]
    for slow in t.slowest:
        task = f" (task {slow.task!r})" if slow.task else ""
        lines.append(f"  {slow.duration * 1000:9.1f} ms  {slow.callback}{task}  {slow.location}")
    return [indent + line for line in lines]
