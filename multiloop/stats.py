"""Loop statistics as a frozen record, for observability (``loop.stats()``).

The core keeps plain integer counters that cost one addition where they change (no per-event objects);
``loop.stats()`` copies them into this record together with the backend's own counters
(``Poller.statistics()``: registrations it holds, kernel calls, stale registrations, rebuilds...), which
only the backend can know.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass, field


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
    #: The backend's own counters (``Poller.statistics()``), read-only; empty when it keeps none.
    backend_stats: Mapping[str, int] = field(default_factory=lambda: types.MappingProxyType({}),
                                             compare=False, hash=False)

    @staticmethod
    def freeze(counters: Mapping[str, int]) -> Mapping[str, int]:
        """A read-only copy of a backend's counters (the poller may keep updating its own dict)."""
        return types.MappingProxyType(dict(counters))
