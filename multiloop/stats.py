"""Loop statistics as a frozen record, for observability (``loop.stats()``)."""

from __future__ import annotations

from dataclasses import dataclass


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
