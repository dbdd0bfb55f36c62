"""Loop statistics as frozen records, for observability (``loop.stats()``).

The core keeps plain integer counters that cost one addition where they change (no per-event objects);
``loop.stats()`` copies them into a record together with the backend's own counters
(``Poller.statistics()``: registrations it holds, kernel calls, stale registrations, rebuilds...), which
only the backend can know.

Timings cannot be had that way: measuring a duration means reading the clock around every wait and every
callback, which costs about as much as running a short callback. So they are opt-in (``loop.enable_timings()``,
``new_loop(timings=True)``, ``python -m multiloop run --stats``), recorded by a built-in instrument
(:mod:`multiloop.timings`) only while enabled, and :attr:`LoopStats.timings` is None otherwise.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SlowCallback:
    """One callback that ran for at least ``loop.slow_callback_duration`` seconds."""

    #: Seconds it ran.
    duration: float
    #: The function's qualified name; for a task step, the task's coroutine function.
    callback: str
    #: ``file:line`` where that function is defined (``"<built-in>"`` when it has no Python code).
    location: str
    #: The task's name, when the callback was a step of a task.
    task: str | None = None


@dataclass(frozen=True)
class LoopTimings:
    """Where a loop's time went since timings were enabled. Seconds, from the monotonic clock (``loop.time()``).

    ``io_wait + callback_time`` is a little less than ``elapsed``: the rest is the loop's own work (and the
    instruments'), and time the loop was not running at all (between ``run_until_complete`` calls).
    """

    #: Seconds since timings were enabled.
    elapsed: float
    #: Seconds spent in the backend's wait for I/O (on the trio bridge: also while trio tasks ran).
    io_wait: float
    #: Seconds spent running callbacks.
    callback_time: float
    #: Loop passes timed.
    passes: int
    #: Callbacks timed (cancelled callbacks are not run, and not counted).
    callbacks: int
    #: Timers run, and the loop's lag: how late they ran, from the time they were due to the time they started
    #: (mean, max). A loop kept busy by long callbacks runs its timers late; an idle one within the clock's
    #: resolution.
    timers: int
    timer_lag_mean: float
    timer_lag_max: float
    #: Callbacks that ran for at least ``loop.slow_callback_duration`` seconds.
    slow_callbacks: int
    #: The slowest of them (at most 5), slowest first.
    slowest: tuple[SlowCallback, ...] = ()


@dataclass(frozen=True)
class LoopStats:
    backend: str
    #: Passes through the loop since creation.
    iterations: int
    #: Callbacks run (fd callbacks, timers, call_soon).
    callbacks: int
    #: (fd, events) pairs the backend reported.
    fd_events: int
    #: Callbacks waiting for the next pass.
    ready: int
    #: Timers scheduled and not cancelled.
    timers: int
    #: Cancelled timers still in the heap (purged lazily).
    cancelled_timers: int
    #: fds with a reader and/or writer.
    fds: int
    #: fds the backend cannot watch and the core treats as always ready.
    always_ready_fds: int
    #: Registrations dropped because the backend reported the fd closed (INVALID); each was reported once
    #: through the exception handler.
    dead_fds: int = 0
    #: Events the backend reported for fds the core had no registration for (stale kernel registrations,
    #: handed to ``Poller.discard_stale``).
    stale_fd_events: int = 0
    #: Where the time went (:class:`LoopTimings`), while timings are enabled; else None.
    timings: LoopTimings | None = None
    #: The backend's own counters (``Poller.statistics()``), read-only; empty when it keeps none.
    backend_stats: Mapping[str, int] = field(default_factory=lambda: types.MappingProxyType({}),
                                             compare=False, hash=False)

    @staticmethod
    def freeze(counters: Mapping[str, int]) -> Mapping[str, int]:
        """A read-only copy of a backend's counters (the poller may keep updating its own dict)."""
        return types.MappingProxyType(dict(counters))
