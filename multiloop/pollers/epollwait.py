"""The epoll backend's wait, compiled: ``epoll_wait(2)`` on a stack buffer, the GIL released around it.

Facts that shape it:
- ``select.epoll.poll()`` allocates its event array on every call, sized by ``maxevents`` (1,023 by default:
  12 KiB, past the small-object allocator, so a ``malloc``/``free`` pair), and parses its arguments; measured
  (callgrind, 3.11) at about 1,500 instructions a call, a tenth of an fd ping-pong round trip. libuv waits on a
  buffer on its stack.
- A loop's poller is used by the loop's thread only, so a buffer on the C stack of the waiting thread is
  never shared, free-threaded builds included; 256 events a wait is plenty (level-triggered: an fd ready but
  not reported this time is reported by the next wait, after this batch's callbacks ran).
- The results must be exactly what ``select.epoll.poll()`` gives the core: a list of ``(fd, events)`` tuples
  with the kernel's event bits, the timeout in seconds rounded *up* to whole milliseconds (a timer must not
  wake the loop early and spin), ``None`` or a negative timeout meaning "no limit". An interrupted wait
  (EINTR) runs the Python signal handlers (a ``KeyboardInterrupt`` propagates as it would from
  ``epoll.poll``) and returns no events; the core recomputes its timeout and waits again, where CPython
  retries inside ``poll``: the same for the loop.

Design: :func:`waiter` gives the poller what it binds as its ``poll``: compiled, the bound ``wait`` of an
:class:`EpollWait` around the epoll object (kept alive with it, so its fd is too); as plain Python, the epoll
object's own ``poll``. A bound method, not the object itself: an extension type's ``__call__`` is called
through ``tp_call``, which packs the argument into a new tuple on every wait (~300 instructions a pass,
measured), where a method is called with the arguments in place (vectorcall).
:func:`native_waiter` gives the poller its ``native_wait`` (the same class): the core calls its
``wait_into``, which passes each event to the core's C method instead of building the list (see
:mod:`multiloop.readiness`); the poller keeps it pointed at its current set. The epoll backend is the only
user; the core never sees this module. Built only where epoll exists (Linux):
elsewhere the compiled class raises, and nothing calls it.
"""

from __future__ import annotations

import select
from collections.abc import Callable
from typing import Any

from ..readiness import NativeWait, ReadinessSink

try:
    import cython  # type: ignore[import-untyped, import-not-found, unused-ignore]
except ImportError:  # running as plain Python without Cython installed
    from .. import _cython_shim as cython  # type: ignore[no-redef, unused-ignore]


class EpollWait(NativeWait):
    """``epoll.poll(timeout)`` through ``epoll_wait(2)`` directly (compiled build only); also the backend's
    :class:`~multiloop.readiness.NativeWait`, which hands each event to the core in C."""

    _epoll: Any
    _fd: int

    def __init__(self, epoll: Any) -> None:
        self.active = True
        self._epoll = epoll  # owns the fd: kept alive as long as this object is
        self._fd = epoll.fileno()

    def rebind(self, epoll: Any) -> None:
        """Wait on ``epoll`` from now on (the poller replaced its set)."""
        self._epoll = epoll
        self._fd = epoll.fileno()

    def wait(self, timeout: float | None = None) -> list[tuple[int, int]]:
        return ml_epoll_wait(self._fd, timeout)  # type: ignore[name-defined]  # noqa: F821

    @cython.locals(n=cython.int, i=cython.int)
    def wait_into(self, sink: ReadinessSink, timeout: float) -> int:
        n = ml_epoll_wait_into(self._fd, timeout, self._fds, self._events)  # type: ignore[name-defined, attr-defined]  # noqa: F821
        for i in range(n):
            sink._on_ready(self._fds[i], self._events[i])  # type: ignore[attr-defined]
        return n


def waiter(epoll: select.epoll) -> Callable[[float | None], list[tuple[int, int]]]:
    """What the epoll poller binds as its ``poll`` for ``epoll``."""
    if cython.compiled:
        return EpollWait(epoll).wait
    return epoll.poll


def native_waiter(epoll: select.epoll) -> EpollWait | None:
    """The poller's ``native_wait`` for ``epoll``: compiled builds only (see :mod:`multiloop.readiness`)."""
    return EpollWait(epoll) if cython.compiled else None
